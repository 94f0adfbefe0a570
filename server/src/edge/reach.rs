//! How people reach a service through the edge router: its URL
//! (`scheme://<service host>:<port>/`, scheme and port from
//! `SLIPWAY_PUBLIC_URL` or the edge address) and, for `.localhost` hosts, a
//! curl line that sends the Host header to the edge address. Text only:
//! shown in the dashboard, never run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::PublicUrl;

#[derive(Debug, Clone)]
pub struct Reach {
    scheme: String,
    port: u16,
    /// Where a client on this machine connects (an unspecified listening
    /// address becomes loopback).
    edge: SocketAddr,
    /// The edge's listening address as configured.
    listen: SocketAddr,
}

impl Default for Reach {
    fn default() -> Self {
        Reach::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)), None)
    }
}

impl Reach {
    pub fn new(edge_addr: SocketAddr, public: Option<&PublicUrl>) -> Self {
        let (scheme, port) = match public {
            Some(p) => (p.scheme.clone(), p.port),
            None => ("http".to_string(), edge_addr.port()),
        };
        let ip = match edge_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Reach { scheme, port, edge: SocketAddr::new(ip, edge_addr.port()), listen: edge_addr }
    }

    /// `:port`, or nothing for the scheme's default port.
    fn port_part(&self) -> String {
        match (self.scheme.as_str(), self.port) {
            ("http", 80) | ("https", 443) => String::new(),
            (_, port) => format!(":{port}"),
        }
    }

    /// The service's URL.
    pub fn url(&self, host: &str) -> String {
        format!("{}://{host}{}/", self.scheme, self.port_part())
    }

    /// What the status page shows: where services answer.
    pub fn pattern(&self) -> String {
        self.url("<service host>")
    }

    pub fn edge_addr(&self) -> String {
        self.listen.to_string()
    }

    /// For a `.localhost` host, a curl line that reaches it from this
    /// machine (through the edge address, with the Host header).
    pub fn curl(&self, host: &str) -> Option<String> {
        let local = host == "localhost" || host.ends_with(".localhost");
        // Hosts are validated domain names: nothing to quote.
        local.then(|| format!("curl -H 'Host: {host}' http://{}/", self.edge))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_public_url_or_the_edge_address() {
        let edge: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let derived = Reach::new(edge, None);
        assert_eq!(derived.url("web.demo.localhost"), "http://web.demo.localhost:8080/");
        assert_eq!(
            derived.curl("web.demo.localhost").as_deref(),
            Some("curl -H 'Host: web.demo.localhost' http://127.0.0.1:8080/")
        );
        let public = PublicUrl { scheme: "https".into(), host: "apps.example.com".into(), port: 443 };
        let reach = Reach::new(edge, Some(&public));
        assert_eq!(reach.url("shop.example.com"), "https://shop.example.com/");
        assert_eq!(reach.curl("shop.example.com"), None);
        let http = PublicUrl { scheme: "http".into(), host: "apps.example.com".into(), port: 8081 };
        assert_eq!(Reach::new(edge, Some(&http)).url("a.b.localhost"), "http://a.b.localhost:8081/");
        assert_eq!(reach.pattern(), "https://<service host>/");
        assert_eq!(reach.edge_addr(), "0.0.0.0:8080");
    }
}
