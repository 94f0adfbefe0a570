//! HTTP-01 challenges from a webroot (`SLIPWAY_EDGE_ACME_WEBROOT`): the plain
//! listener answers `/.well-known/acme-challenge/<token>` for every host
//! from `<webroot>/.well-known/acme-challenge/<token>`, where certbot,
//! lego and acme.sh write them in their webroot mode. Before any route, and
//! never redirected to HTTPS (the CA asks over plain HTTP).

use std::path::Path;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::body::EdgeBody;

/// The path prefix the edge answers itself when a webroot is set.
pub const PREFIX: &str = "/.well-known/acme-challenge/";
/// A challenge file is a short token plus a key thumbprint.
const MAX_FILE: u64 = 64 * 1024;

/// An ACME token: base64url characters only (so no `/`, `.` or `..`).
fn valid_token(token: &str) -> bool {
    (1..=255).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn plain(status: StatusCode, body: Bytes) -> Response<EdgeBody> {
    let mut response = Response::new(EdgeBody::Page(Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The answer for `path` (which starts with [`PREFIX`]).
pub async fn answer(webroot: &Path, path: &str) -> Response<EdgeBody> {
    let token = path.strip_prefix(PREFIX).unwrap_or_default();
    if !valid_token(token) {
        return plain(StatusCode::NOT_FOUND, Bytes::from_static(b"no such challenge\n"));
    }
    let file = webroot.join(".well-known/acme-challenge").join(token);
    let read = async {
        let meta = tokio::fs::metadata(&file).await?;
        if !meta.is_file() || meta.len() > MAX_FILE {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        }
        tokio::fs::read(&file).await
    };
    match read.await {
        Ok(bytes) => plain(StatusCode::OK, Bytes::from(bytes)),
        Err(_) => plain(StatusCode::NOT_FOUND, Bytes::from_static(b"no such challenge\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_token;

    #[test]
    fn tokens_are_base64url_only() {
        assert!(valid_token("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"));
        for bad in ["", "..", "a/b", "a.b", "%2e%2e", "a b", &"x".repeat(256)] {
            assert!(!valid_token(bad), "{bad:?}");
        }
    }
}
