//! The edge's HTTPS certificates: listed for everyone signed in, uploaded
//! and deleted by admins.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{CertificateForm, CertificateView},
};

/// Every served certificate, soonest expiry first (viewer).
#[server(prefix = "/rpc", endpoint = "list_certificates", input = Json)]
pub async fn list_certificates() -> Result<Vec<CertificateView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.list_certificates(&caller()).await)
}

/// Uploads a PEM chain and key (admin); refused whole, naming the field.
#[server(prefix = "/rpc", endpoint = "upload_certificate", input = Json)]
pub async fn upload_certificate(form: CertificateForm) -> Result<CertificateView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.upload_certificate(&caller(), form).await)
}

/// Deletes an uploaded certificate (admin).
#[server(prefix = "/rpc", endpoint = "delete_certificate", input = Json)]
pub async fn delete_certificate(certificate_id: i64) -> Result<(), AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.delete_certificate(&caller(), certificate_id).await)
}
