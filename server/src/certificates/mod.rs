//! Certificates uploaded for the edge's HTTPS listener: a PEM chain and its
//! key per certificate, checked whole before anything is stored, the key
//! sealed at rest and never answered. The certificate's own DNS names are
//! the domains it serves (a name typed beside it could disagree with it).
//!
//! An upload replaces every uploaded certificate whose names it covers, in
//! the same transaction: uploading a renewal is one step, and uploading the
//! same certificate twice changes nothing. After every change all uploads
//! are loaded again into the edge's certificate store (`edge::tls::store`,
//! source `Upload`), which swaps its index whole: a handshake never sees a
//! half-done change. Startup loads them before the HTTPS listener accepts.
//!
//! The list also shows the watched directory's certificates (read-only:
//! they are renewed and removed on disk).

mod stored;

use std::sync::Arc;

use app::wire::{Caller, CertificateForm, CertificateSource, CertificateState, CertificateView, Role};
use chrono::{DateTime, Utc};

use crate::{
    access::require,
    audit::{self, Event},
    edge::tls::{
        certs::{self, LoadedCert},
        store::Source,
    },
    engine::{Engine, EngineError},
    validate::Problems,
};

/// Longest chain accepted: a leaf and a few intermediates are under 10 KiB.
pub const MAX_CHAIN: usize = 64 * 1024;
/// Longest key accepted: an RSA-8192 key in PEM is under 7 KiB.
pub const MAX_KEY: usize = 16 * 1024;
/// A certificate may start this far in the future (clocks differ); later
/// is refused, as clients would refuse it.
const START_SLACK_SECS: i64 = 3600;

/// Seconds since the Unix epoch as a stored timestamp.
fn rfc3339(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0).map(crate::db::format_time).unwrap_or_default()
}

/// The standing of a certificate valid from `not_before` to `not_after` at
/// `now` (all Unix seconds), and its whole days left.
pub fn standing(not_before: i64, not_after: i64, now: i64) -> (CertificateState, i64) {
    let days_left = (not_after - now).div_euclid(86_400);
    let state = if now > not_after || now < not_before {
        CertificateState::Expired
    } else if days_left < app::wire::EXPIRY_WARNING_DAYS {
        CertificateState::Expiring
    } else {
        CertificateState::Valid
    };
    (state, days_left)
}

/// What the list shows of a served certificate.
fn view(cert: &LoadedCert, source: CertificateSource, now: i64) -> CertificateView {
    let (state, days_left) = standing(cert.not_before, cert.not_after, now);
    CertificateView {
        id: None,
        source,
        names: cert.names.clone(),
        not_before: rfc3339(cert.not_before),
        not_after: rfc3339(cert.not_after),
        days_left,
        state,
        fingerprint: cert.fingerprint(),
        uploaded_by: None,
        uploaded_at: None,
    }
}

/// The form checked whole, then the certificate itself: ready to serve, or
/// refused naming the field at fault.
fn check(form: &CertificateForm, now: i64) -> Result<LoadedCert, EngineError> {
    let mut p = Problems::new();
    for (field, text, max) in [("chain_pem", &form.chain_pem, MAX_CHAIN), ("key_pem", &form.key_pem, MAX_KEY)]
    {
        if text.trim().is_empty() {
            p.add(field, "is required (PEM text)");
        } else if text.len() > max {
            p.add(field, format!("must be at most {} KiB of PEM", max / 1024));
        }
    }
    p.finish().map_err(EngineError::of_fields)?;
    let cert = certs::load(form.chain_pem.as_bytes(), form.key_pem.as_bytes())
        .map_err(|e| EngineError::Invalid { field: e.field(), message: e.to_string() })?;
    if cert.not_after < now {
        let message = format!("the certificate expired at {}: upload its renewal", rfc3339(cert.not_after));
        return Err(EngineError::Invalid { field: "chain_pem", message });
    }
    if cert.not_before > now + START_SLACK_SECS {
        let message = format!("the certificate is valid only from {}", rfc3339(cert.not_before));
        return Err(EngineError::Invalid { field: "chain_pem", message });
    }
    Ok(cert)
}

/// Serializes the loads into the store, so a slow load of older rows never
/// lands after a newer one.
static LOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Engine {
    /// Every certificate the edge serves: uploads and the directory's,
    /// soonest expiry first (viewer). Never a key.
    pub async fn list_certificates(&self, caller: &Caller) -> Result<Vec<CertificateView>, EngineError> {
        require(caller, Role::Viewer)?;
        let now = Utc::now().timestamp();
        let mut list: Vec<CertificateView> =
            stored::all(&self.db).await?.iter().map(|row| row.view(now)).collect();
        for (source, cert) in self.settings.certs.all() {
            if source == Source::Directory {
                list.push(view(&cert, CertificateSource::Directory, now));
            }
        }
        list.sort_by(|a, b| (&a.not_after, &a.names).cmp(&(&b.not_after, &b.names)));
        Ok(list)
    }

    /// Checks and stores a certificate (admin), its key sealed, replacing
    /// the uploads whose names it covers; served at once. Audited, with the
    /// names and the fingerprint, never the key.
    pub async fn upload_certificate(
        &self,
        caller: &Caller,
        form: CertificateForm,
    ) -> Result<CertificateView, EngineError> {
        let who = require(caller, Role::Admin)?;
        let now = Utc::now().timestamp();
        let cert = check(&form, now)?;
        let sealed = self.secrets.seal(&form.key_pem);
        let (engine, caller) = (self.clone(), caller.clone());
        // Its own task: a request dropped after the commit (a client gone)
        // still audits and serves the change.
        let stored = tokio::spawn(async move {
            let (row, replaced) = stored::insert_replacing(&engine.db, &cert, &sealed, &who).await?;
            let mut detail = format!("{} sha256={}", cert.names.join(","), row.fingerprint);
            if !replaced.is_empty() {
                let ids: Vec<String> = replaced.iter().map(|id| format!("#{id}")).collect();
                detail.push_str(&format!(" replaced {}", ids.join(",")));
            }
            let event = Event::by(&caller, "certificate.upload")
                .target(format!("certificate:{}", row.id))
                .detail(detail);
            audit::record(&engine.db, event).await;
            tracing::info!(certificate_id = row.id, names = ?cert.names, ?replaced, "certificate uploaded");
            engine.serve_uploads().await;
            anyhow::Ok(row)
        });
        let row = stored.await.map_err(|e| EngineError::Internal(e.into()))??;
        Ok(row.view(now))
    }

    /// Removes an uploaded certificate (admin); its names are no longer
    /// served unless another certificate covers them.
    pub async fn delete_certificate(&self, caller: &Caller, id: i64) -> Result<(), EngineError> {
        require(caller, Role::Admin)?;
        let (engine, caller) = (self.clone(), caller.clone());
        // Its own task, as an upload's.
        let deleted = tokio::spawn(async move {
            let Some(row) = stored::delete(&engine.db, id).await? else { return anyhow::Ok(false) };
            let event = Event::by(&caller, "certificate.delete")
                .target(format!("certificate:{id}"))
                .detail(format!("{} sha256={}", row.names.join(","), row.fingerprint));
            audit::record(&engine.db, event).await;
            tracing::info!(certificate_id = id, names = ?row.names, "certificate deleted");
            engine.serve_uploads().await;
            Ok(true)
        });
        match deleted.await.map_err(|e| EngineError::Internal(e.into()))?? {
            true => Ok(()),
            false => Err(EngineError::NotFound("certificate")),
        }
    }

    /// [`load_certificates`](Self::load_certificates) after a change that
    /// is stored already: a failure is logged (the change stands, and
    /// startup loads it), not answered.
    async fn serve_uploads(&self) {
        if let Err(e) = self.load_certificates().await {
            tracing::error!(error = %format!("{e:#}"), "uploaded certificates not reloaded");
        }
    }

    /// Loads every upload into the edge's store; returns how many are
    /// served. One that cannot be opened or loaded (a changed secret key)
    /// is left out, logged and counted as a reload error.
    pub async fn load_certificates(&self) -> anyhow::Result<usize> {
        let _one_at_a_time = LOADING.lock().await;
        let store = &self.settings.certs;
        let mut loaded = Vec::new();
        for row in stored::all(&self.db).await? {
            match row.load(&self.secrets) {
                Ok(cert) => loaded.push(Arc::new(cert)),
                Err(error) => {
                    crate::edge::tls::store::TlsStats::count(&store.stats.reload_errors);
                    tracing::warn!(certificate_id = row.id, %error, "uploaded certificate not served");
                }
            }
        }
        let count = loaded.len();
        store.replace(Source::Upload, loaded);
        Ok(count)
    }
}

#[cfg(test)]
mod tests;
