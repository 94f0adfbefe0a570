//! Wire types of the edge's HTTPS certificates: uploaded ones (a PEM chain
//! and key; the key is sealed at rest and never answered) and the ones of
//! the watched certificate directory.

use serde::{Deserialize, Serialize};

/// Days before expiry from which a certificate is flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Where a served certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertificateSource {
    /// Uploaded in the dashboard or the API; deleted there.
    Upload,
    /// A file of `SLIPWAY_EDGE_CERT_DIR`; renewed and removed on disk.
    Directory,
}

/// A certificate's standing by its dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertificateState {
    Valid,
    /// Expires within [`EXPIRY_WARNING_DAYS`].
    Expiring,
    /// Past its end date, or not valid yet.
    Expired,
}

/// A certificate as listed: never its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CertificateView {
    /// The upload's id; `null` for a file of the certificate directory.
    pub id: Option<i64>,
    pub source: CertificateSource,
    /// The domains it is served for (its DNS names, lower-case; a wildcard
    /// such as `*.apps.example.com` covers one label).
    pub names: Vec<String>,
    /// Validity, RFC 3339 (UTC).
    pub not_before: String,
    pub not_after: String,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    pub state: CertificateState,
    /// SHA-256 of the leaf certificate, lower-case hex.
    pub fingerprint: String,
    /// Who uploaded it and when (uploads only).
    pub uploaded_by: Option<String>,
    pub uploaded_at: Option<String>,
}

/// A certificate to upload (`POST /api/v1/certificates`). An upload
/// replaces every uploaded certificate whose names it covers (a renewal).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CertificateForm {
    /// PEM: the certificate, then its intermediates (`fullchain.pem`).
    pub chain_pem: String,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1; `privkey.pem`). Sealed
    /// at rest, never answered.
    pub key_pem: String,
}

/// Never the key, wherever a form is printed.
impl std::fmt::Debug for CertificateForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateForm")
            .field("chain_pem", &format_args!("{} bytes", self.chain_pem.len()))
            .field("key_pem", &"[redacted]")
            .finish()
    }
}
