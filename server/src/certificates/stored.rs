//! The `edge_certificates` rows: the chain in the clear, the key sealed.

use std::collections::BTreeSet;

use anyhow::Context;
use app::wire::{CertificateSource, CertificateView};
use sqlx::{sqlite::SqliteRow, Row as _};

use super::{rfc3339, standing};
use crate::{
    db::Db,
    edge::tls::certs::{self, LoadedCert},
    secrets::Secrets,
};

const COLUMNS: &str =
    "id, names, chain_pem, key_sealed, not_before, not_after, fingerprint, uploaded_by, uploaded_at";

/// One uploaded certificate as stored.
pub struct Stored {
    pub id: i64,
    pub names: Vec<String>,
    chain_pem: String,
    key_sealed: String,
    not_before: String,
    not_after: String,
    /// The same two, in seconds since the Unix epoch.
    validity: (i64, i64),
    pub fingerprint: String,
    uploaded_by: String,
    uploaded_at: String,
}

fn unix(stored: &str) -> anyhow::Result<i64> {
    let time = chrono::DateTime::parse_from_rfc3339(stored);
    Ok(time.with_context(|| format!("edge_certificates: {stored:?} is not an RFC 3339 time"))?.timestamp())
}

impl Stored {
    fn from_row(row: &SqliteRow) -> anyhow::Result<Stored> {
        let names: String = row.try_get("names")?;
        let (not_before, not_after): (String, String) =
            (row.try_get("not_before")?, row.try_get("not_after")?);
        Ok(Stored {
            validity: (unix(&not_before)?, unix(&not_after)?),
            id: row.try_get("id")?,
            names: serde_json::from_str(&names).context("edge_certificates.names is not a JSON list")?,
            chain_pem: row.try_get("chain_pem")?,
            key_sealed: row.try_get("key_sealed")?,
            not_before,
            not_after,
            fingerprint: row.try_get("fingerprint")?,
            uploaded_by: row.try_get("uploaded_by")?,
            uploaded_at: row.try_get("uploaded_at")?,
        })
    }

    pub fn view(&self, now: i64) -> CertificateView {
        let (state, days_left) = standing(self.validity.0, self.validity.1, now);
        CertificateView {
            id: Some(self.id),
            source: CertificateSource::Upload,
            names: self.names.clone(),
            not_before: self.not_before.clone(),
            not_after: self.not_after.clone(),
            days_left,
            state,
            fingerprint: self.fingerprint.clone(),
            uploaded_by: Some(self.uploaded_by.clone()),
            uploaded_at: Some(self.uploaded_at.clone()),
        }
    }

    /// The certificate ready to serve, its key opened.
    pub fn load(&self, secrets: &Secrets) -> anyhow::Result<LoadedCert> {
        let key = secrets.open(&self.key_sealed)?;
        Ok(certs::load(self.chain_pem.as_bytes(), key.as_bytes())?)
    }
}

/// Every upload, oldest first.
pub async fn all(db: &Db) -> anyhow::Result<Vec<Stored>> {
    let rows =
        sqlx::query(&format!("SELECT {COLUMNS} FROM edge_certificates ORDER BY id")).fetch_all(db).await?;
    rows.iter().map(Stored::from_row).collect()
}

/// Stores `cert` with its sealed key and removes, in the same transaction,
/// every upload whose names `cert` covers; returns the new row and the ids
/// it replaced.
pub async fn insert_replacing(
    db: &Db,
    cert: &LoadedCert,
    key_sealed: &str,
    uploaded_by: &str,
) -> anyhow::Result<(Stored, Vec<i64>)> {
    let covers: BTreeSet<&str> = cert.names.iter().map(String::as_str).collect();
    // The write comes first, so the transaction holds SQLite's write lock
    // from its first statement (a read upgraded later can fail at once).
    let mut tx = db.begin().await?;
    let row = sqlx::query(&format!(
        "INSERT INTO edge_certificates (names, chain_pem, key_sealed, not_before, not_after, fingerprint, \
         uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
    ))
    .bind(serde_json::to_string(&cert.names)?)
    .bind(cert.chain_pem())
    .bind(key_sealed)
    .bind(rfc3339(cert.not_before))
    .bind(rfc3339(cert.not_after))
    .bind(cert.fingerprint())
    .bind(uploaded_by)
    .bind(crate::db::now_rfc3339())
    .fetch_one(&mut *tx)
    .await?;
    let stored = Stored::from_row(&row)?;
    let mut replaced = Vec::new();
    let others = sqlx::query("SELECT id, names FROM edge_certificates WHERE id != ?").bind(stored.id);
    for row in others.fetch_all(&mut *tx).await? {
        let names: Vec<String> = serde_json::from_str(row.try_get("names")?)
            .context("edge_certificates.names is not a JSON list")?;
        if names.iter().all(|n| covers.contains(n.as_str())) {
            replaced.push(row.try_get::<i64, _>("id")?);
        }
    }
    for id in &replaced {
        sqlx::query("DELETE FROM edge_certificates WHERE id = ?").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok((stored, replaced))
}

/// Removes upload `id`; `None` when there is none.
pub async fn delete(db: &Db, id: i64) -> anyhow::Result<Option<Stored>> {
    let row = sqlx::query(&format!("DELETE FROM edge_certificates WHERE id = ? RETURNING {COLUMNS}"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(Stored::from_row).transpose()
}
