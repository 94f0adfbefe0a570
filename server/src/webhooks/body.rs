//! A delivery's body: read in chunks under a hard cap ([`MAX_BODY`]), its
//! content type, and the JSON payload inside it (the body itself, or the
//! `payload` field of a form).
//!
//! What the signature covers depends on the forge and the encoding:
//!
//! * JSON: every forge signs the body as sent.
//! * Form (`application/x-www-form-urlencoded`, `payload=<url-encoded JSON>`):
//!   GitHub signs the body as sent (form-encoded), so the raw bytes are
//!   verified before the form is decoded. Gitea signs the JSON *before* form
//!   encoding it (its `services/webhook/deliver.go` hashes `PayloadContent`
//!   and sends `url.Values{"payload": …}.Encode()`): the HMAC of the raw
//!   body can never match, which is why form deliveries from Gitea used to
//!   read "signature does not match". See [`signed_messages`].
//! * GitLab authenticates with a token, not the body, and sends JSON only.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap};
use http_body_util::BodyExt;

use super::{Forge, MAX_BODY};

/// How the payload travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json` (also assumed when no `Content-Type` is sent).
    Json,
    /// `application/x-www-form-urlencoded` with a `payload` field.
    Form,
}

/// Why a body was refused before its JSON was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "the body is larger than {MAX_BODY} bytes (GitHub's largest push payload is 25 MB; \
         nothing larger is read)"
    )]
    TooLarge,
    #[error("the body could not be read")]
    Read,
    #[error(
        "content type {0} is not supported: choose application/json or \
         application/x-www-form-urlencoded in the forge's webhook settings"
    )]
    UnsupportedType(String),
    #[error(
        "the body is sent as application/x-www-form-urlencoded but has no payload field \
         (if it is JSON, set the webhook's content type to application/json)"
    )]
    NoPayloadField,
    #[error("the form-encoded body has more than one payload field")]
    ManyPayloadFields,
}

/// Reads the body frame by frame and stops as soon as it passes
/// [`MAX_BODY`]; a declared `Content-Length` above the cap is refused before
/// anything is read. Memory grows with what actually arrives (the first
/// reservation is at most 1 MiB, whatever the declared length).
pub async fn read(headers: &HeaderMap, mut body: Body) -> Result<Bytes, BodyError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(BodyError::TooLarge);
    }
    let first = declared.map_or(64 * 1024, |len| len as usize).min(1024 * 1024);
    let mut buf = BytesMut::with_capacity(first);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Read)?;
        let Ok(data) = frame.into_data() else { continue };
        if data.len() > MAX_BODY - buf.len() {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// The body's encoding from `Content-Type` (parameters such as `charset`
/// are ignored). Anything but JSON or a form is refused, naming the type.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Encoding::Json);
    };
    let Ok(text) = value.to_str() else {
        return Err(BodyError::UnsupportedType("(not printable)".into()));
    };
    let essence = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Encoding::Json),
        "application/x-www-form-urlencoded" => Ok(Encoding::Form),
        _ => Err(BodyError::UnsupportedType(shown(&essence))),
    }
}

/// A media type safe to echo: short and made of token characters only.
fn shown(essence: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$&^_.+-/*".contains(&b);
    if essence.is_empty() {
        "(empty)".into()
    } else if essence.len() <= 100 && essence.bytes().all(token) {
        essence.into()
    } else {
        "(not a media type)".into()
    }
}

/// The url-decoded `payload` field of a form body (exactly one is allowed;
/// other fields are ignored). Decoding is `form_urlencoded`'s (`+` is a
/// space, `%XX` a byte, invalid UTF-8 becomes U+FFFD).
pub fn form_payload(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let mut found = None;
    for (name, value) in form_urlencoded::parse(body) {
        if name == "payload" {
            if found.is_some() {
                return Err(BodyError::ManyPayloadFields);
            }
            found = Some(value.into_owned().into_bytes());
        }
    }
    found.ok_or(BodyError::NoPayloadField)
}

/// The messages a valid signature may cover, in the order to try: the raw
/// body, except for a Gitea form, where it is the decoded payload (what
/// Gitea signs), then the raw body (should a Gitea-compatible forge sign
/// what it sends). Either way only bytes the secret's holder signed are
/// used: the payload is the signed message itself or decoded from it.
pub fn signed_messages<'a>(
    forge: Forge,
    encoding: Encoding,
    raw: &'a [u8],
    payload: Option<&'a [u8]>,
) -> Vec<&'a [u8]> {
    match (forge, encoding, payload) {
        (Forge::Gitea, Encoding::Form, Some(payload)) => vec![payload, raw],
        _ => vec![raw],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, http::HeaderValue::from_static(value));
        h
    }

    #[test]
    fn content_types() {
        assert_eq!(encoding(&HeaderMap::new()), Ok(Encoding::Json));
        assert_eq!(encoding(&typed("application/json")), Ok(Encoding::Json));
        assert_eq!(encoding(&typed("Application/JSON; charset=utf-8")), Ok(Encoding::Json));
        assert_eq!(encoding(&typed("application/x-www-form-urlencoded")), Ok(Encoding::Form));
        let e = encoding(&typed("text/plain; charset=utf-8")).expect_err("refused");
        assert_eq!(e, BodyError::UnsupportedType("text/plain".into()));
        let message = e.to_string();
        assert!(message.starts_with("content type text/plain is not supported"), "{message}");
        assert!(message.contains("application/x-www-form-urlencoded"), "{message}");
        let e = encoding(&typed("text/html<script>")).expect_err("refused");
        assert_eq!(e, BodyError::UnsupportedType("(not a media type)".into()));
        assert_eq!(encoding(&typed("")), Err(BodyError::UnsupportedType("(empty)".into())));
    }

    #[test]
    fn the_payload_field_is_decoded() {
        let body = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22a%22%3A%22x+y%22%7D";
        assert_eq!(form_payload(body), Ok(br#"{"ref":"refs/heads/main","a":"x y"}"#.to_vec()));
        assert_eq!(form_payload(b"other=1&payload=%7B%7D&more"), Ok(b"{}".to_vec()));
        assert_eq!(form_payload(b"payload="), Ok(Vec::new()));
        assert_eq!(form_payload(br#"{"ref":"refs/heads/main"}"#), Err(BodyError::NoPayloadField));
        assert_eq!(form_payload(b""), Err(BodyError::NoPayloadField));
        assert_eq!(form_payload(b"payload=1&payload=2"), Err(BodyError::ManyPayloadFields));
    }

    #[tokio::test]
    async fn reading_stops_at_the_cap() {
        let exact = read(&HeaderMap::new(), Body::from(vec![b'x'; MAX_BODY])).await;
        assert_eq!(exact.map(|b| b.len()), Ok(MAX_BODY));
        let over = read(&HeaderMap::new(), Body::from(vec![b'x'; MAX_BODY + 1])).await;
        assert_eq!(over, Err(BodyError::TooLarge));
        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, (MAX_BODY + 1).to_string().parse().expect("value"));
        assert_eq!(read(&declared, Body::empty()).await, Err(BodyError::TooLarge));
    }
}
