//! One certificate: a PEM chain and its private key, checked and turned
//! into what rustls serves plus what people read of it (names, dates).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_cert::der::Decode;

/// A certificate ready to serve.
#[derive(Debug)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// The leaf's DNS names (subject alternative names), lower-case;
    /// wildcards as `*.example.com`.
    pub names: Vec<String>,
    /// Validity, in seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
}

impl LoadedCert {
    pub fn expired_at(&self, unix_now: i64) -> bool {
        unix_now > self.not_after || unix_now < self.not_before
    }
}

/// Why a chain and key cannot be served. The messages name no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    #[error("is not valid PEM: {0}")]
    ChainPem(String),
    #[error("is not valid PEM: {0}")]
    KeyPem(String),
    #[error("the certificate cannot be read: {0}")]
    Certificate(String),
    #[error("the private key is not usable: {0}")]
    Key(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate names no DNS name (subject alternative name)")]
    NoNames,
}

impl CertError {
    /// The input at fault: the chain or the key.
    pub fn field(&self) -> &'static str {
        match self {
            CertError::NoKey | CertError::KeyPem(_) | CertError::Key(_) | CertError::KeyMismatch => "key_pem",
            CertError::NoCertificate
            | CertError::ChainPem(_)
            | CertError::Certificate(_)
            | CertError::NoNames => "chain_pem",
        }
    }
}

/// What is wrong with a PEM text, in words that copy none of it: the
/// parser's own messages quote whole lines, and a key pasted on one line
/// would come back in the answer.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a section has no END line",
        Error::IllegalSectionStart { .. } => {
            "a BEGIN line is malformed (each PEM line must be on a line of its own)"
        }
        Error::Base64Decode(_) => "a section is not valid base64",
        Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be read",
    }
    .to_string()
}

fn unix_seconds(time: x509_cert::time::Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

impl LoadedCert {
    /// The leaf (the certificate clients see first).
    fn leaf(&self) -> &[u8] {
        self.key.cert.first().map(|c| c.as_ref()).unwrap_or_default()
    }

    /// SHA-256 of the leaf (DER), lower-case hex: what `openssl x509
    /// -fingerprint -sha256` prints, without the colons.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.leaf()))
    }

    /// The chain as PEM, re-encoded from its parsed certificates: whatever
    /// else the input held (a private key pasted beside them, comments) is
    /// not in it.
    pub fn chain_pem(&self) -> String {
        let line = pem_rfc7468::LineEnding::LF;
        self.key
            .cert
            .iter()
            .filter_map(|c| pem_rfc7468::encode_string("CERTIFICATE", line, c.as_ref()).ok())
            .collect()
    }
}

/// Checks `chain_pem` (leaf first) against `key_pem` (the same bytes when
/// one file holds both).
pub fn load(chain_pem: &[u8], key_pem: &[u8]) -> Result<LoadedCert, CertError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::ChainPem(pem_problem(&e)))?;
    let leaf = chain.first().ok_or(CertError::NoCertificate)?;
    let key = match PrivateKeyDer::from_pem_slice(key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(CertError::NoKey),
        Err(e) => return Err(CertError::KeyPem(pem_problem(&e))),
    };
    let parsed = x509_cert::Certificate::from_der(leaf).map_err(|e| CertError::Certificate(e.to_string()))?;
    let validity = &parsed.tbs_certificate.validity;
    let names: Vec<String> = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| CertError::Certificate(format!("{e:?}")))?
        .valid_dns_names()
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if names.is_empty() {
        return Err(CertError::NoNames);
    }
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| CertError::Key(e.to_string()))?;
    let key = CertifiedKey::new(chain.clone(), signing);
    // Unlike CertifiedKey::from_der, an unknown consistency is refused too.
    key.keys_match().map_err(|_| CertError::KeyMismatch)?;
    Ok(LoadedCert {
        key: Arc::new(key),
        names,
        not_before: unix_seconds(validity.not_before),
        not_after: unix_seconds(validity.not_after),
    })
}
