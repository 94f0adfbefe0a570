//! Header work of the proxy: hop-by-hop headers and the request's host.

use std::borrow::Cow;

use http::{header, HeaderMap, HeaderName, HeaderValue, Request};

/// The `X-Forwarded-*` names, made at compile time (a `&str` name is
/// parsed again on every insert).
pub(super) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(super) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(super) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one hop, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including those the `Connection` header
/// names. Returns the `Upgrade` value if the message asked to upgrade.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) -> Option<HeaderValue> {
    // Most messages carry none: one pass over the names, no removals.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return None;
    }
    // One pass over the `Connection` tokens; `keep-alive` (what most
    // upstream answers carry) is in the list already, so nothing is
    // allocated for it.
    let mut upgrade_asked = false;
    let mut named: Vec<HeaderName> = Vec::new();
    let tokens =
        headers.get_all(header::CONNECTION).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    for token in tokens.map(str::trim) {
        if token.eq_ignore_ascii_case("upgrade") {
            upgrade_asked = true;
        } else if !token.eq_ignore_ascii_case("keep-alive") {
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    let upgrade = if upgrade_asked { headers.get(header::UPGRADE).cloned() } else { None };
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
    upgrade
}

/// The request's host, lower-cased, without a port (borrowed unless it
/// had upper-case letters).
pub(super) fn host_of<B>(req: &Request<B>) -> Option<Cow<'_, str>> {
    let raw = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host())?;
    let host = match raw.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => raw,
    };
    let host = host.trim_end_matches('.');
    Some(match host.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(host.to_ascii_lowercase()),
        false => Cow::Borrowed(host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_upgrades_are_seen() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade, x-secret-hop"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert_eq!(strip_hop_by_hop(&mut h), Some(HeaderValue::from_static("websocket")));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));

        let mut plain = HeaderMap::new();
        plain.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        plain.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        assert_eq!(strip_hop_by_hop(&mut plain), None);
        assert_eq!(plain.len(), 1, "keep-alive alone is also removed: {plain:?}");
    }

    #[test]
    fn host_is_normalized() {
        let req = |host: &str| Request::get("/").header(header::HOST, host).body(()).expect("request");
        assert_eq!(host_of(&req("Web.Shop.Localhost:8080")).as_deref(), Some("web.shop.localhost"));
        assert_eq!(host_of(&req("web.shop.localhost.")).as_deref(), Some("web.shop.localhost"));
        assert!(matches!(host_of(&req("web.shop.localhost:80")), Some(Cow::Borrowed("web.shop.localhost"))));
    }
}
