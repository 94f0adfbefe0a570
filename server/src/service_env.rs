//! A service's environment variables. Secret values are sealed
//! ([`crate::secrets`]) before they are stored and are never returned by
//! [`list`]; deploys snapshot the sealed form and open it only to start the
//! container, and builds get the plain values only as log redactions.

use serde::{Deserialize, Serialize};

use crate::{db::Db, projects::ProjectError, secrets::Secrets, validate};

/// Most variables one service may have.
pub const MAX_VARS: usize = 200;

/// A variable as submitted. For a secret that already exists, `value: None`
/// keeps the stored value (the browser never sees it, so cannot resend it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvInput {
    pub name: String,
    pub value: Option<String>,
    pub secret: bool,
}

/// A variable as shown: secret values are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvView {
    pub name: String,
    pub value: Option<String>,
    pub secret: bool,
}

/// A variable as stored and snapshotted: a secret's value is sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEnv {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// Checks the variables as [`replace`] would, without writing anything.
pub fn check(vars: &[EnvInput]) -> Result<(), ProjectError> {
    let mut p = validate::Problems::new();
    check_into(vars, &mut p);
    p.finish().map_err(ProjectError::of_fields)
}

/// [`check`], noting every refusal in `p` (field `env`, one per variable).
pub fn check_into(vars: &[EnvInput], p: &mut validate::Problems) {
    if vars.len() > MAX_VARS {
        p.add("env", format!("at most {MAX_VARS} variables"));
        return;
    }
    for var in vars {
        let Some(name) = p.check(validate::env_name(&var.name)) else {
            continue;
        };
        if let Some(value) = &var.value {
            if let Err(e) = validate::env_value(value) {
                p.add("env", format!("{name}: {}", e.message));
            }
        }
    }
}

/// The variables with each name once: a later entry of a name replaces an
/// earlier one in its place (as in a `.env` file, and as build args do).
pub fn last_wins(vars: &[EnvInput]) -> Vec<EnvInput> {
    let mut out: Vec<EnvInput> = Vec::with_capacity(vars.len());
    for var in vars {
        match out.iter_mut().find(|o| o.name == var.name) {
            Some(o) => *o = var.clone(),
            None => out.push(var.clone()),
        }
    }
    out
}

/// Replaces the service's variables with `vars` (a name given twice: the
/// later entry), all or nothing.
pub async fn replace(
    db: &Db,
    secrets: &Secrets,
    service_id: i64,
    vars: &[EnvInput],
) -> Result<(), ProjectError> {
    check(vars)?;
    let vars = &last_wins(vars);
    let mut tx = db.begin_with("BEGIN IMMEDIATE").await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM services WHERE id = ?")
        .bind(service_id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(ProjectError::NotFound { what: "service" });
    }
    let old = stored_on(&mut tx, service_id).await?;
    sqlx::query("DELETE FROM service_env WHERE service_id = ?").bind(service_id).execute(&mut *tx).await?;
    for var in vars {
        let value = match (&var.value, var.secret) {
            (Some(v), true) => secrets.seal(v),
            (Some(v), false) => v.clone(),
            (None, _) => match old.iter().find(|o| o.name == var.name && o.secret && var.secret) {
                Some(o) => o.value.clone(),
                None => {
                    return Err(ProjectError::Invalid {
                        field: "env",
                        message: format!("{}: a value is required", var.name),
                    })
                }
            },
        };
        sqlx::query("INSERT INTO service_env (service_id, name, value, secret) VALUES (?, ?, ?, ?)")
            .bind(service_id)
            .bind(&var.name)
            .bind(value)
            .bind(var.secret)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE services SET updated_at = ? WHERE id = ?")
        .bind(crate::db::now_rfc3339())
        .bind(service_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The variables of service `?1` with secret values masked (null), by name,
/// as a JSON array of [`EnvView`]s (one value, however many variables).
pub const LIST_JSON_SQL: &str = "SELECT json_group_array(json_object('name', name, \
     'value', CASE WHEN secret THEN NULL ELSE value END, \
     'secret', json(CASE WHEN secret THEN 'true' ELSE 'false' END)) ORDER BY name) \
     FROM service_env WHERE service_id = ?1";

/// The variables with secret values masked, by name.
pub async fn list(db: &Db, service_id: i64) -> Result<Vec<EnvView>, ProjectError> {
    let json: String = sqlx::query_scalar(LIST_JSON_SQL).bind(service_id).fetch_one(db).await?;
    parse_list(&json)
}

/// Reads [`LIST_JSON_SQL`]'s answer.
pub fn parse_list(json: &str) -> Result<Vec<EnvView>, ProjectError> {
    serde_json::from_str(json).map_err(|e| ProjectError::Corrupt { field: "env", message: e.to_string() })
}

/// The variables as stored (secrets sealed), by name.
pub async fn stored(db: &Db, service_id: i64) -> Result<Vec<StoredEnv>, ProjectError> {
    let mut conn = db.acquire().await?;
    stored_on(&mut conn, service_id).await
}

async fn stored_on(
    conn: &mut sqlx::SqliteConnection,
    service_id: i64,
) -> Result<Vec<StoredEnv>, ProjectError> {
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT name, value, secret FROM service_env WHERE service_id = ? ORDER BY name")
            .bind(service_id)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(name, value, secret)| StoredEnv { name, value, secret }).collect())
}

/// Opens sealed values: `(name, plain value)` pairs for a container.
pub fn open_all(secrets: &Secrets, vars: &[StoredEnv]) -> anyhow::Result<Vec<(String, String)>> {
    vars.iter()
        .map(|v| {
            let value = if v.secret {
                secrets.open(&v.value).map_err(|e| anyhow::anyhow!("env {}: {e}", v.name))?
            } else {
                v.value.clone()
            };
            Ok((v.name.clone(), value))
        })
        .collect()
}

/// The plain values of the secret variables: what logs must never show.
pub fn secret_values(secrets: &Secrets, vars: &[StoredEnv]) -> Vec<String> {
    vars.iter().filter(|v| v.secret).filter_map(|v| secrets.open(&v.value).ok()).collect()
}
