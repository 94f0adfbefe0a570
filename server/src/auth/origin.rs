//! Refuses cross-origin state-changing requests (server functions, forms),
//! on top of SameSite=Strict: a sibling subdomain (a deployed service, say)
//! is same-site and would get the cookie.
//!
//! For any method but GET, HEAD, OPTIONS and TRACE:
//! * `Sec-Fetch-Site`, when sent, must be `same-origin` or `none`;
//! * `Origin`, when sent, must name this host (the `Host` header);
//! * a request with neither (curl, webhooks) passes: browsers send them.

use app::AppError;
use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{header, HeaderMap, Method, StatusCode};

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Why a request was refused, or `Ok` when it may proceed.
pub fn check(method: &Method, headers: &HeaderMap, authority: Option<&str>) -> Result<(), &'static str> {
    if is_safe(method) {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err("cross-origin request refused (Sec-Fetch-Site)");
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(authority);
    let origin_host =
        origin.to_str().ok().and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err("cross-origin request refused (Origin does not match Host)"),
    }
}

/// The middleware: 403 with the server functions' JSON error body.
pub async fn reject_cross_origin(req: Request, next: Next) -> Response {
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    if let Err(reason) = check(req.method(), req.headers(), authority.as_deref()) {
        tracing::warn!(method = %req.method(), path = req.uri().path(), reason, "request refused");
        let body = serde_json::to_string(&AppError::Forbidden(reason.into())).unwrap_or_default();
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn verdicts() {
        let host = ("host", "127.0.0.1:3000");
        let post = Method::POST;
        assert!(check(&Method::GET, &headers(&[("origin", "https://evil.example")]), None).is_ok());
        assert!(check(&post, &headers(&[host]), None).is_ok(), "no browser headers: not a browser");
        assert!(check(&post, &headers(&[host, ("origin", "http://127.0.0.1:3000")]), None).is_ok());
        assert!(check(&post, &headers(&[host, ("sec-fetch-site", "same-origin")]), None).is_ok());
        assert!(check(&post, &headers(&[host, ("origin", "http://evil.example")]), None).is_err());
        assert!(check(&post, &headers(&[host, ("origin", "null")]), None).is_err());
        assert!(check(&post, &headers(&[host, ("origin", "http://127.0.0.1:3001")]), None).is_err());
        assert!(check(&post, &headers(&[host, ("sec-fetch-site", "same-site")]), None).is_err());
        assert!(check(&post, &headers(&[host, ("sec-fetch-site", "cross-site")]), None).is_err());
        assert!(check(&Method::DELETE, &headers(&[host, ("origin", "http://evil.example")]), None).is_err());
        assert!(check(&post, &headers(&[("origin", "http://a.example")]), Some("a.example")).is_ok());
        assert!(check(&post, &headers(&[("origin", "http://a.example")]), None).is_err());
    }
}
