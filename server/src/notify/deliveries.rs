//! The record of notification deliveries: one row per attempt (queued
//! notifications and "Send test" alike) with how the target answered, so the
//! notifications page shows what happened. Errors are stored redacted: the
//! target's URL (a secret) never reaches a row.

use sqlx::Row;

use crate::db::Db;

/// Rows kept per target; older ones are dropped as new ones come.
pub const KEPT_PER_TARGET: i64 = 50;
/// Longest error text stored.
const MAX_ERROR: usize = 300;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A 2xx answer.
    Ok { status: u16 },
    /// The target answered with another status.
    Refused { status: u16 },
    /// No answer: connection, timeout, TLS, …; the text is redacted.
    Failed { error: String },
}

impl Sent {
    pub fn is_ok(&self) -> bool {
        matches!(self, Sent::Ok { .. })
    }

    /// The text a job's error and the logs carry for a failed attempt.
    pub fn failure(&self) -> Option<String> {
        match self {
            Sent::Ok { .. } => None,
            Sent::Refused { status } => Some(format!("the target answered HTTP {status}")),
            Sent::Failed { error } => Some(error.clone()),
        }
    }
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub target_id: i64,
    pub event: String,
    pub attempt: u32,
    pub ok: bool,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub at: String,
}

/// `text` without `url`, its path-and-query, or anything after its host
/// (a token may sit in any of them), clipped to [`MAX_ERROR`] characters.
pub fn redact(text: &str, url: &str) -> String {
    let mut out = text.to_string();
    let mut secrets = vec![url.to_string(), url.trim_end_matches('/').to_string()];
    if let Ok(parsed) = reqwest::Url::parse(url) {
        let rest = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        if rest.len() > 1 {
            secrets.push(rest);
        }
        if let Some(q) = parsed.query() {
            secrets.push(q.to_string());
        }
        if let Some(password) = parsed.password() {
            secrets.push(password.to_string());
        }
        if !parsed.username().is_empty() {
            secrets.push(parsed.username().to_string());
        }
        secrets.push(parsed.to_string());
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets.iter().filter(|s| s.len() > 1) {
        out = out.replace(secret.as_str(), "…");
    }
    match out.char_indices().nth(MAX_ERROR) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out,
    }
}

/// Records one attempt and drops the target's rows beyond
/// [`KEPT_PER_TARGET`]. A target deleted meanwhile records nothing.
pub async fn record(
    db: &Db,
    target_id: i64,
    event: &str,
    attempt: u32,
    sent: &Sent,
) -> anyhow::Result<Option<DeliveryRecord>> {
    let (ok, http_status, error) = match sent {
        Sent::Ok { status } => (true, Some(i64::from(*status)), None),
        Sent::Refused { status } => (false, Some(i64::from(*status)), None),
        Sent::Failed { error } => (false, None, Some(error.clone())),
    };
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "INSERT INTO notification_deliveries (target_id, event, attempt, ok, http_status, error, at) \
         SELECT id, ?, ?, ?, ?, ?, ? FROM notification_targets WHERE id = ? \
         RETURNING id, target_id, event, attempt, ok, http_status, error, at",
    )
    .bind(event)
    .bind(i64::from(attempt))
    .bind(ok)
    .bind(http_status)
    .bind(&error)
    .bind(crate::db::now_rfc3339())
    .bind(target_id)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM notification_deliveries WHERE target_id = ?1 AND id NOT IN \
         (SELECT id FROM notification_deliveries WHERE target_id = ?1 ORDER BY id DESC LIMIT ?2)",
    )
    .bind(target_id)
    .bind(KEPT_PER_TARGET)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    row.as_ref().map(from_row).transpose()
}

/// The newest `per_target` attempts of each of the project's targets,
/// newest first.
pub async fn recent(db: &Db, project_id: i64, per_target: i64) -> anyhow::Result<Vec<DeliveryRecord>> {
    let rows = sqlx::query(
        "SELECT id, target_id, event, attempt, ok, http_status, error, at FROM ( \
             SELECT d.*, ROW_NUMBER() OVER (PARTITION BY d.target_id ORDER BY d.id DESC) AS n \
             FROM notification_deliveries d JOIN notification_targets t ON t.id = d.target_id \
             WHERE t.project_id = ?) \
         WHERE n <= ? ORDER BY id DESC",
    )
    .bind(project_id)
    .bind(per_target)
    .fetch_all(db)
    .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<DeliveryRecord> {
    let status: Option<i64> = row.try_get("http_status")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        target_id: row.try_get("target_id")?,
        event: row.try_get("event")?,
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(0),
        ok: row.try_get("ok")?,
        http_status: status.and_then(|s| u16::try_from(s).ok()),
        error: row.try_get("error")?,
        at: row.try_get("at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_the_url_and_its_token_parts() {
        let url = "https://user:pw@hooks.example.com/services/T0/B0/s3cret?token=abc";
        let text = format!("error sending request for url ({url}): /services/T0/B0/s3cret?token=abc pw");
        let clean = redact(&text, url);
        for secret in ["s3cret", "token=abc", "user:pw", " pw"] {
            assert!(!clean.contains(secret), "{secret} left in {clean}");
        }
        assert!(clean.starts_with("error sending request"), "{clean}");
        let long = "x".repeat(1000);
        assert_eq!(redact(&long, url).chars().count(), MAX_ERROR + 1);
    }
}
