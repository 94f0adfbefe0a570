//! Password rules and argon2id hashing with DESIGN.md's parameters
//! (m = 19456 KiB, t = 2, p = 1). Hashing is CPU-bound: async callers use
//! [`hash_blocking`] and [`verify_blocking`], which run on the blocking pool.

use std::sync::OnceLock;

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};

/// Memory cost in KiB.
pub const ARGON2_M_KIB: u32 = 19_456;
/// Iterations.
pub const ARGON2_T: u32 = 2;
/// Parallelism.
pub const ARGON2_P: u32 = 1;
/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the hashing work per request).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a new password against the rules (length only: no composition
/// rules, following NIST SP 800-63B).
pub fn check_rules(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of `password` with a fresh 16-byte salt. Does not
/// check the rules (see [`check_rules`]).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let phc = hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("stored password hash is malformed");
        return false;
    };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// A hash of a random password, verified against when the user does not
/// exist so that the answer takes as long as for a real user.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random = format!("{:032x}", rand::random::<u128>());
        hash(&random).unwrap_or_default()
    })
}

/// [`hash`] on the blocking pool.
pub async fn hash_blocking(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| PasswordError::Hash(format!("hashing task failed: {e}")))?
}

/// [`verify`] on the blocking pool; `None` as the hash verifies against
/// [`dummy_hash`] and is always false.
pub async fn verify_blocking(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify(&password, &phc),
        None => {
            let _ = verify(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_count_characters_and_bound_bytes() {
        assert_eq!(check_rules("short"), Err(PasswordError::TooShort));
        assert_eq!(check_rules("ééééééééééé"), Err(PasswordError::TooShort)); // 11 chars, 22 bytes
        assert!(check_rules("éééééééééééé").is_ok());
        assert!(check_rules(&"x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        assert_eq!(check_rules(&"x".repeat(MAX_PASSWORD_BYTES + 1)), Err(PasswordError::TooLong));
    }

    #[test]
    fn hash_verifies_and_salts() {
        let a = hash("correct horse battery").expect("hash");
        let b = hash("correct horse battery").expect("hash");
        assert_ne!(a, b, "fresh salt each time");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterx", &a));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert!(dummy_hash().starts_with("$argon2id$"));
    }
}
