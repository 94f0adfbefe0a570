//! Secrets at rest: AES-256-GCM with a key from `SLIPWAY_SECRET_KEY` or a
//! generated key file (`<data>/secret.key`, mode 0600).
//!
//! A sealed value is `v1:` followed by base64 of a fresh 96-bit nonce and the
//! ciphertext with its tag. Opening checks the tag, so a tampered or foreign
//! value is refused rather than returned as garbage.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;
const KEY_FILE: &str = "secret.key";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("SLIPWAY_SECRET_KEY: must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)")]
    BadEnvKey,
    #[error("key file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("a stored secret cannot be decrypted (wrong key or damaged value)")]
    Undecryptable,
}

/// Seals and opens secret values.
#[derive(Clone)]
pub struct Secrets {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Uses `env_key` (base64 of 32 bytes) when given, else the key file in
    /// `data_dir`, creating it (0600) on first use.
    pub fn load(data_dir: &Path, env_key: Option<&str>) -> Result<Secrets, SecretsError> {
        let key = match env_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(encoded) => decode_key(encoded).ok_or(SecretsError::BadEnvKey)?,
            None => key_file(&data_dir.join(KEY_FILE))?,
        };
        Ok(Secrets::from_key(&key))
    }

    pub fn from_key(key: &[u8; 32]) -> Secrets {
        Secrets { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }

    /// Encrypts `plain` under a fresh nonce.
    pub fn seal(&self, plain: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        // Encryption fails only for inputs beyond GCM's 64 GiB limit.
        let sealed = self.cipher.encrypt(&nonce, plain.as_bytes()).unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(bytes))
    }

    /// Decrypts a value made by [`seal`](Self::seal).
    pub fn open(&self, sealed: &str) -> Result<String, SecretsError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(SecretsError::Undecryptable)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretsError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Undecryptable)
    }
}

fn decode_key(encoded: &str) -> Option<[u8; 32]> {
    B64.decode(encoded.trim()).ok()?.try_into().ok()
}

/// Reads the key file, or creates it with a new random key.
fn key_file(path: &Path) -> Result<[u8; 32], SecretsError> {
    let err = |message: String| SecretsError::KeyFile { path: path.display().to_string(), message };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path).map_err(err)?;
            decode_key(&text).ok_or_else(|| err("does not hold 32 bytes of base64".into()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = Aes256Gcm::generate_key(OsRng).into();
            write_private(path, B64.encode(key).as_bytes()).map_err(|e| err(e.to_string()))?;
            tracing::info!(path = %path.display(), "generated a new secret key");
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Refuses a key file other users can read.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!("mode {:o} lets other users read it; run chmod 600", mode & 0o777));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let s = Secrets::from_key(&[7; 32]);
        let a = s.seal("hunter2");
        let b = s.seal("hunter2");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("hunter2"));
        assert_eq!(s.open(&a).expect("opens"), "hunter2");
        assert_eq!(s.open(&s.seal("")).expect("empty"), "");
    }

    #[test]
    fn tampered_or_foreign_values_are_refused() {
        let s = Secrets::from_key(&[7; 32]);
        let sealed = s.seal("hunter2");
        let mut bytes = B64.decode(&sealed[PREFIX.len()..]).expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{PREFIX}{}", B64.encode(bytes));
        assert!(matches!(s.open(&tampered), Err(SecretsError::Undecryptable)));
        assert!(matches!(Secrets::from_key(&[8; 32]).open(&sealed), Err(SecretsError::Undecryptable)));
        assert!(matches!(s.open("hunter2"), Err(SecretsError::Undecryptable)));
    }

    #[test]
    fn key_file_is_created_private_and_reused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = Secrets::load(dir.path(), None)?;
        let sealed = first.seal("v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Secrets::load(dir.path(), None)?.open(&sealed)?, "v", "same key on reload");
        Ok(())
    }

    #[test]
    fn env_key_must_be_32_bytes_of_base64() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let e = Secrets::load(dir.path(), Some("c2hvcnQ=")).expect_err("too short");
        assert!(e.to_string().contains("SLIPWAY_SECRET_KEY"), "{e}");
        let key = B64.encode([1u8; 32]);
        let s = Secrets::load(dir.path(), Some(&key))?;
        assert_eq!(Secrets::from_key(&[1; 32]).open(&s.seal("x"))?, "x");
        assert!(!dir.path().join(KEY_FILE).exists(), "no key file when the env key is set");
        Ok(())
    }
}
