//! Webhook authenticity, compared in constant time against the service's
//! secret: GitHub `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`,
//! Gitea `X-Gitea-Signature: <hex HMAC-SHA256 of the JSON payload>`, GitLab
//! `X-Gitlab-Token: <the secret itself>`. Which bytes are passed as the
//! body for a form delivery is [`super::body::signed_messages`]'s choice.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("signature does not match")]
    Mismatch,
}

/// GitHub: `header` is the value of `X-Hub-Signature-256`.
pub fn github(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), VerifyError> {
    const NAME: &str = "X-Hub-Signature-256";
    let value = header.ok_or(VerifyError::MissingHeader(NAME))?;
    let hex_sig = value.trim().strip_prefix("sha256=").ok_or(VerifyError::Malformed(NAME))?;
    hmac_hex(secret, body, hex_sig, NAME)
}

/// Gitea: `header` is the value of `X-Gitea-Signature`.
pub fn gitea(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), VerifyError> {
    const NAME: &str = "X-Gitea-Signature";
    hmac_hex(secret, body, header.ok_or(VerifyError::MissingHeader(NAME))?.trim(), NAME)
}

/// GitLab: `header` is the value of `X-Gitlab-Token`.
pub fn gitlab(secret: &[u8], header: Option<&str>) -> Result<(), VerifyError> {
    let token = header.ok_or(VerifyError::MissingHeader("X-Gitlab-Token"))?;
    if bool::from(token.as_bytes().ct_eq(secret)) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn hmac_hex(secret: &[u8], body: &[u8], hex_sig: &str, name: &'static str) -> Result<(), VerifyError> {
    let sig = hex::decode(hex_sig).map_err(|_| VerifyError::Malformed(name))?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| VerifyError::Mismatch)?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's published example (docs: "Validating webhook deliveries").
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_test_vector_verifies() {
        assert_eq!(github(SECRET, BODY, Some(SIG)), Ok(()));
    }

    #[test]
    fn a_one_byte_change_to_body_or_signature_fails() {
        assert_eq!(github(SECRET, b"Hello, World?", Some(SIG)), Err(VerifyError::Mismatch));
        let mut sig = SIG.to_string();
        sig.pop();
        sig.push('8'); // last hex digit 7 → 8
        assert_eq!(github(SECRET, BODY, Some(&sig)), Err(VerifyError::Mismatch));
        assert_eq!(github(b"It's a Secret to Everybody!", BODY, Some(SIG)), Err(VerifyError::Mismatch));
    }

    #[test]
    fn missing_or_malformed_headers_fail() {
        assert_eq!(github(SECRET, BODY, None), Err(VerifyError::MissingHeader("X-Hub-Signature-256")));
        assert_eq!(github(SECRET, BODY, Some(&SIG[7..])), Err(VerifyError::Malformed("X-Hub-Signature-256")));
        assert_eq!(
            github(SECRET, BODY, Some("sha256=zz")),
            Err(VerifyError::Malformed("X-Hub-Signature-256"))
        );
        assert_eq!(gitea(SECRET, BODY, None), Err(VerifyError::MissingHeader("X-Gitea-Signature")));
        assert_eq!(gitlab(SECRET, None), Err(VerifyError::MissingHeader("X-Gitlab-Token")));
    }

    #[test]
    fn gitea_uses_the_bare_hex_hmac() {
        assert_eq!(gitea(SECRET, BODY, Some(&SIG[7..])), Ok(()));
        assert_eq!(gitea(SECRET, BODY, Some(SIG)), Err(VerifyError::Malformed("X-Gitea-Signature")));
        assert_eq!(gitea(SECRET, b"Hello, World!\n", Some(&SIG[7..])), Err(VerifyError::Mismatch));
    }

    #[test]
    fn gitlab_compares_the_token() {
        assert_eq!(gitlab(SECRET, Some("It's a Secret to Everybody")), Ok(()));
        assert_eq!(gitlab(SECRET, Some("It's a Secret to Everybodz")), Err(VerifyError::Mismatch));
        assert_eq!(gitlab(SECRET, Some("")), Err(VerifyError::Mismatch));
    }
}
