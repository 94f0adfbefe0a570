//! What a notification says: the generic JSON body, snapshotted when the
//! event happens (every attempt sends the same), and its Slack one-liner.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::EventKind;
use crate::db::Db;

/// Longest error text carried in a message (the build or deploy row keeps
/// the whole of it).
const MAX_ERROR: usize = 2000;
/// Longest error text in a Slack line.
const MAX_SLACK_ERROR: usize = 300;

/// The event of a message sent with "Send test".
pub const TEST_EVENT: &str = "test";

/// The body of a generic webhook notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// One of [`EventKind::ALL`], e.g. `build.succeeded`, or [`TEST_EVENT`].
    pub event: String,
    /// Project name.
    pub project: String,
    /// Service name.
    pub service: String,
    /// The build (for a deploy event: the build deployed, if any).
    pub build: Option<BuildInfo>,
    /// The deployment (deploy events only).
    pub deployment: Option<DeploymentInfo>,
    /// When the event was noticed, RFC 3339 UTC.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub id: i64,
    pub number: i64,
    pub git_ref: String,
    pub commit: Option<String>,
    pub status: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentInfo {
    pub id: i64,
    pub status: String,
    pub reason: Option<String>,
    pub rollback_of: Option<i64>,
    /// Why it failed (deploy.failed).
    pub error: Option<String>,
}

impl Message {
    /// What "Send test" sends: the test event, the project, nothing else.
    pub fn test(project: &str) -> Message {
        Message {
            event: TEST_EVENT.into(),
            project: project.into(),
            service: String::new(),
            build: None,
            deployment: None,
            at: crate::db::now_rfc3339(),
        }
    }
}

const BUILD_SQL: &str = "SELECT b.id, b.number, b.git_ref, b.commit_sha, b.status, b.error, \
         s.name AS service, p.id AS project_id, p.name AS project \
     FROM builds b JOIN services s ON s.id = b.service_id JOIN projects p ON p.id = s.project_id \
     WHERE b.id = ?";

/// The event a build's final status means, with its message and project.
pub(super) async fn for_build(db: &Db, build_id: i64) -> anyhow::Result<Option<(i64, EventKind, Message)>> {
    let Some(row) = sqlx::query(BUILD_SQL).bind(build_id).fetch_optional(db).await? else {
        return Ok(None);
    };
    let build = build_info(&row)?;
    let event = match build.status.as_str() {
        "succeeded" => EventKind::BuildSucceeded,
        "failed" | "timed_out" | "interrupted" => EventKind::BuildFailed,
        // Cancelled by someone (who knows), or not finished.
        _ => return Ok(None),
    };
    let message = Message {
        event: event.as_str().to_string(),
        project: row.try_get("project")?,
        service: row.try_get("service")?,
        build: Some(build),
        deployment: None,
        at: crate::db::now_rfc3339(),
    };
    Ok(Some((row.try_get("project_id")?, event, message)))
}

/// The event a deployment's status means after its job: live (a rollback
/// that went live is `deploy.rolled_back`) or failed.
pub(super) async fn for_deployment(
    db: &Db,
    deployment_id: i64,
) -> anyhow::Result<Option<(i64, EventKind, Message)>> {
    let row = sqlx::query(
        "SELECT d.id, d.status, d.reason, d.rollback_of, d.error, d.build_id, \
             s.name AS service, p.id AS project_id, p.name AS project \
         FROM deployments d JOIN services s ON s.id = d.service_id JOIN projects p ON p.id = s.project_id \
         WHERE d.id = ?",
    )
    .bind(deployment_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let deployment = DeploymentInfo {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        reason: row.try_get("reason")?,
        rollback_of: row.try_get("rollback_of")?,
        error: row.try_get::<Option<String>, _>("error")?.map(|e| clip(&e, MAX_ERROR)),
    };
    let event = match deployment.status.as_str() {
        // Live now; replaced already only if something raced past the hook.
        "live" | "superseded" | "rolled_back" if deployment.rollback_of.is_some() => {
            EventKind::DeployRolledBack
        }
        "live" | "superseded" | "rolled_back" => EventKind::DeploySucceeded,
        "failed" => EventKind::DeployFailed,
        _ => return Ok(None),
    };
    let build = match row.try_get::<Option<i64>, _>("build_id")? {
        Some(build_id) => match sqlx::query(BUILD_SQL).bind(build_id).fetch_optional(db).await? {
            Some(b) => Some(build_info(&b)?),
            None => None,
        },
        None => None,
    };
    let message = Message {
        event: event.as_str().to_string(),
        project: row.try_get("project")?,
        service: row.try_get("service")?,
        build,
        deployment: Some(deployment),
        at: crate::db::now_rfc3339(),
    };
    Ok(Some((row.try_get("project_id")?, event, message)))
}

fn build_info(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<BuildInfo> {
    Ok(BuildInfo {
        id: row.try_get("id")?,
        number: row.try_get("number")?,
        git_ref: row.try_get("git_ref")?,
        commit: row.try_get("commit_sha")?,
        status: row.try_get("status")?,
        error: row.try_get::<Option<String>, _>("error")?.map(|e| clip(&e, MAX_ERROR)),
    })
}

impl Message {
    /// A readable one-liner for Slack-compatible incoming webhooks, with
    /// `&`, `<` and `>` escaped as Slack requires.
    pub fn slack_text(&self) -> String {
        let who = format!("{}/{}", self.project, self.service);
        let build = self.build.as_ref();
        let source = build.map(|b| match &b.commit {
            Some(sha) => format!("{} @ {}", b.git_ref, sha.chars().take(7).collect::<String>()),
            None => b.git_ref.clone(),
        });
        let error = |e: Option<&String>| match e {
            Some(e) => format!(": {}", one_line(e, MAX_SLACK_ERROR)),
            None => String::new(),
        };
        let deployment = self.deployment.as_ref();
        let dep_id = deployment.map_or(0, |d| d.id);
        let text = match self.event.as_str() {
            TEST_EVENT => format!("🔔 Slipway test notification for project {}", self.project),
            "build.succeeded" | "build.failed" => {
                let (number, status, err) =
                    build.map_or((0, "", None), |b| (b.number, b.status.as_str(), b.error.as_ref()));
                let source = source.unwrap_or_default();
                match status {
                    "succeeded" => format!("✅ {who}: build #{number} succeeded ({source})"),
                    "timed_out" => format!("❌ {who}: build #{number} timed out ({source}){}", error(err)),
                    _ => format!("❌ {who}: build #{number} failed ({source}){}", error(err)),
                }
            }
            "deploy.succeeded" => {
                let from = match (build, source) {
                    (Some(b), Some(source)) => format!(" (build #{}, {source})", b.number),
                    _ => String::new(),
                };
                format!("🚀 {who}: deployment #{dep_id} is live{from}")
            }
            "deploy.rolled_back" => {
                let to = deployment.and_then(|d| d.rollback_of).unwrap_or(0);
                format!("⏪ {who}: rolled back to deployment #{to} (now live as deployment #{dep_id})")
            }
            "deploy.failed" => format!(
                "❌ {who}: deployment #{dep_id} failed{}; the previous deployment keeps serving",
                error(deployment.and_then(|d| d.error.as_ref()))
            ),
            other => format!("{who}: {other}"),
        };
        slack_escape(&text)
    }
}

/// `&`, `<`, `>` as Slack's mrkdwn needs them.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The first line of `text`, at most `max` characters (… when cut).
fn one_line(text: &str, max: usize) -> String {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    clip(first, max)
}

/// At most `max` characters of `text` (… when cut).
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_message(event: EventKind, status: &str, error: Option<&str>) -> Message {
        Message {
            event: event.as_str().into(),
            project: "shop".into(),
            service: "web".into(),
            build: Some(BuildInfo {
                id: 7,
                number: 3,
                git_ref: "main".into(),
                commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                status: status.into(),
                error: error.map(String::from),
            }),
            deployment: None,
            at: "2026-11-23T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn slack_lines_are_readable_and_escaped() {
        let ok = build_message(EventKind::BuildSucceeded, "succeeded", None);
        assert_eq!(ok.slack_text(), "✅ shop/web: build #3 succeeded (main @ 0123456)");
        let failed =
            build_message(EventKind::BuildFailed, "failed", Some("step 2 <RUN make> failed & died\nmore"));
        assert_eq!(
            failed.slack_text(),
            "❌ shop/web: build #3 failed (main @ 0123456): step 2 &lt;RUN make&gt; failed &amp; died"
        );
        let mut rollback = build_message(EventKind::DeployRolledBack, "succeeded", None);
        rollback.deployment = Some(DeploymentInfo {
            id: 12,
            status: "live".into(),
            reason: None,
            rollback_of: Some(10),
            error: None,
        });
        assert_eq!(
            rollback.slack_text(),
            "⏪ shop/web: rolled back to deployment #10 (now live as deployment #12)"
        );
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hé", 2), "hé");
        assert_eq!(one_line("\n  first  \nsecond", 10), "first");
    }
}
