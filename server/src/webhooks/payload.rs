//! What a delivery says: the forge (from the path), the event and delivery
//! id (from headers), and for a push the branch and the commit to build.
//!
//! Every value here comes from the network. Nothing is echoed back into a
//! reason or a log except delivery ids and event names that passed a strict
//! character check.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::verify::{self, VerifyError};
use crate::validate;

/// The forges Slipway accepts webhooks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    Github,
    Gitlab,
    Gitea,
}

impl Forge {
    pub const ALL: [Forge; 3] = [Forge::Github, Forge::Gitlab, Forge::Gitea];

    pub fn parse(raw: &str) -> Option<Forge> {
        match raw {
            "github" => Some(Forge::Github),
            "gitlab" => Some(Forge::Gitlab),
            "gitea" => Some(Forge::Gitea),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Github => "github",
            Forge::Gitlab => "gitlab",
            Forge::Gitea => "gitea",
        }
    }

    /// Checks the delivery's signature (GitHub, Gitea) or token (GitLab).
    pub fn verify(self, secret: &[u8], body: &[u8], headers: &HeaderMap) -> Result<(), VerifyError> {
        match self {
            Forge::Github => verify::github(secret, body, header(headers, "x-hub-signature-256")),
            Forge::Gitea => verify::gitea(secret, body, header(headers, "x-gitea-signature")),
            Forge::Gitlab => verify::gitlab(secret, header(headers, "x-gitlab-token")),
        }
    }

    fn event_header(self) -> &'static str {
        match self {
            Forge::Github => "x-github-event",
            Forge::Gitlab => "x-gitlab-event",
            Forge::Gitea => "x-gitea-event",
        }
    }
}

/// Why a delivery's headers or payload were refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    #[error("a push needs a delivery id header (or GitLab's Idempotency-Key) to be deduplicated")]
    NoDeliveryId,
    #[error("the push payload has no {0}")]
    MissingField(&'static str),
    #[error("the push payload's {field} is invalid: {message}")]
    Invalid { field: &'static str, message: String },
}

/// The kind of event a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Push,
    Ping,
    Other,
}

/// A header's value when it is visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Short, printable, no spaces at the ends: safe to store, log and show.
fn tame(raw: &str, max: usize, allow_space: bool) -> bool {
    !raw.is_empty()
        && raw.len() <= max
        && raw.trim() == raw
        && raw.bytes().all(|b| b.is_ascii_graphic() || (allow_space && b == b' '))
}

/// The delivery id: GitHub `X-GitHub-Delivery`, Gitea `X-Gitea-Delivery`,
/// GitLab `X-Gitlab-Event-UUID`, else `X-Gitlab-Webhook-UUID`. `None` when
/// absent; refused when present but not a short token of letters, digits
/// and `-_.:`.
pub fn delivery_id(forge: Forge, headers: &HeaderMap) -> Result<Option<String>, PayloadError> {
    let names: &[&'static str] = match forge {
        Forge::Github => &["x-github-delivery"],
        Forge::Gitea => &["x-gitea-delivery"],
        Forge::Gitlab => &["x-gitlab-event-uuid", "x-gitlab-webhook-uuid"],
    };
    for name in names {
        if let Some(id) = id_header(headers, name)? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// GitLab's `Idempotency-Key` (GitLab 17.4+): the same on every retry of one
/// event, when the event UUID may not be. Checked like a delivery id; other
/// forges do not send it, so it is not read for them.
pub fn idempotency_key(forge: Forge, headers: &HeaderMap) -> Result<Option<String>, PayloadError> {
    match forge {
        Forge::Gitlab => id_header(headers, "idempotency-key"),
        Forge::Github | Forge::Gitea => Ok(None),
    }
}

/// A header holding an id: `None` when absent, refused when not a short
/// token of letters, digits and `-_.:`.
fn id_header(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, PayloadError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let text = value.to_str().map_err(|_| PayloadError::MalformedHeader(name))?;
    // Forges send UUIDs; allow a little more, nothing a reader could trip on.
    let id_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':');
    if !tame(text, 128, false) || !text.bytes().all(id_char) {
        return Err(PayloadError::MalformedHeader(name));
    }
    Ok(Some(text.to_string()))
}

/// The event name as sent (`push`, `Push Hook`, …). Refused when missing
/// or not a short printable name.
pub fn event_name(forge: Forge, headers: &HeaderMap) -> Result<String, PayloadError> {
    let name = forge.event_header();
    let value = headers.get(name).ok_or(PayloadError::MissingHeader(name))?;
    let text = value.to_str().map_err(|_| PayloadError::MalformedHeader(name))?;
    if !tame(text, 64, true) {
        return Err(PayloadError::MalformedHeader(name));
    }
    Ok(text.to_string())
}

/// Push, ping or anything else.
pub fn classify(forge: Forge, event: &str) -> EventKind {
    match (forge, event) {
        (Forge::Github | Forge::Gitea, "push") | (Forge::Gitlab, "Push Hook") => EventKind::Push,
        (Forge::Github | Forge::Gitea, "ping") => EventKind::Ping,
        _ => EventKind::Other,
    }
}

/// What a push asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// Build this commit (full id, lower case).
    Build { sha: String },
    /// Acknowledge and do nothing, for this reason.
    Ignore(String),
}

/// Reads a push payload: `ref` must name the service's `branch`; the commit
/// is `after` (GitLab: `checkout_sha`, then `after`) and must be a full
/// commit id. A deleted branch (all zeros) is ignored.
pub fn push(forge: Forge, payload: &Value, branch: &str) -> Result<Push, PayloadError> {
    let git_ref = string_field(payload, "ref")?.ok_or(PayloadError::MissingField("ref"))?;
    // The pushed ref is never echoed: it may be anything.
    if git_ref.strip_prefix("refs/heads/") != Some(branch) {
        return Ok(Push::Ignore(format!("not a push to the service's branch {branch}")));
    }
    pushed_commit(forge, payload, branch)
}

/// A push to a project hook: the pushed branch (validated) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchPush {
    pub branch: String,
    pub push: Push,
}

/// Reads a push payload for a project hook: `ref` must be a branch
/// (`refs/heads/…`, a valid branch name); tags and other refs are ignored.
/// The commit is read as for [`push`].
pub fn branch_push(forge: Forge, payload: &Value) -> Result<Result<BranchPush, String>, PayloadError> {
    let git_ref = string_field(payload, "ref")?.ok_or(PayloadError::MissingField("ref"))?;
    let Some(name) = git_ref.strip_prefix("refs/heads/") else {
        return Ok(Err("not a push to a branch".into()));
    };
    let Ok(branch) = validate::git_ref(name) else {
        return Ok(Err("the pushed branch name is not one Slipway accepts".into()));
    };
    let push = pushed_commit(forge, payload, &branch)?;
    Ok(Ok(BranchPush { branch, push }))
}

/// The pushed commit (`after`, or GitLab's `checkout_sha`), a full commit
/// id; an all-zeros id (a deleted branch) is ignored.
fn pushed_commit(forge: Forge, payload: &Value, branch: &str) -> Result<Push, PayloadError> {
    let checkout = match forge {
        Forge::Gitlab => string_field(payload, "checkout_sha")?,
        Forge::Github | Forge::Gitea => None,
    };
    let after = match checkout {
        Some(sha) => sha,
        None => string_field(payload, "after")?.ok_or(PayloadError::MissingField("after"))?,
    };
    let sha = validate::commit_sha(after)
        .map_err(|e| PayloadError::Invalid { field: "after", message: e.message })?;
    if !(sha.len() == 40 || sha.len() == 64) {
        return Err(PayloadError::Invalid { field: "after", message: "must be a full commit id".into() });
    }
    if sha.bytes().all(|b| b == b'0') {
        return Ok(Push::Ignore(format!("branch {branch} was deleted")));
    }
    Ok(Push::Build { sha })
}

/// The repository addresses a push names, as the forges send them: GitHub
/// and Gitea `repository.{clone_url, ssh_url, git_url, html_url, url}`,
/// GitLab `project.{git_http_url, git_ssh_url, web_url, http_url, ssh_url,
/// url}` and `repository.{url, git_http_url, git_ssh_url, homepage}`.
/// Fields that are absent or not strings are skipped.
pub fn repository_urls(forge: Forge, payload: &Value) -> Vec<String> {
    let fields: &[(&str, &[&str])] = match forge {
        Forge::Github | Forge::Gitea => {
            &[("repository", &["clone_url", "ssh_url", "git_url", "html_url", "url"])]
        }
        Forge::Gitlab => &[
            ("project", &["git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url", "url"]),
            ("repository", &["url", "git_http_url", "git_ssh_url", "homepage"]),
        ],
    };
    let mut urls = Vec::new();
    for (object, names) in fields {
        for name in *names {
            if let Some(url) = payload.get(object).and_then(|o| o.get(name)).and_then(Value::as_str) {
                if url.len() <= 2048 && !urls.iter().any(|u| u == url) {
                    urls.push(url.to_string());
                }
            }
        }
    }
    urls
}

/// A string field of the top-level object; `None` when absent or null.
fn string_field<'a>(payload: &'a Value, name: &'static str) -> Result<Option<&'a str>, PayloadError> {
    let object = payload
        .as_object()
        .ok_or(PayloadError::Invalid { field: "body", message: "must be a JSON object".into() })?;
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(PayloadError::Invalid { field: name, message: "must be a string".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn a_push_to_the_branch_builds_the_commit() {
        let p = json!({ "ref": "refs/heads/main", "after": SHA.to_uppercase() });
        assert_eq!(push(Forge::Github, &p, "main"), Ok(Push::Build { sha: SHA.into() }));
        let p = json!({ "ref": "refs/heads/main", "after": "1".repeat(40), "checkout_sha": SHA });
        assert_eq!(push(Forge::Gitlab, &p, "main"), Ok(Push::Build { sha: SHA.into() }));
        // Gitea has no checkout_sha: `after` is the commit.
        assert_eq!(push(Forge::Gitea, &p, "main"), Ok(Push::Build { sha: "1".repeat(40) }));
    }

    #[test]
    fn other_branches_tags_and_deletions_are_ignored() {
        for r in ["refs/heads/dev", "refs/tags/main", "main", "refs/heads/main/x", "refs/heads/$(id)"] {
            let p = json!({ "ref": r, "after": SHA });
            assert!(matches!(push(Forge::Github, &p, "main"), Ok(Push::Ignore(_))), "{r}");
        }
        let zeros = json!({ "ref": "refs/heads/main", "after": "0".repeat(40), "checkout_sha": null });
        assert!(matches!(push(Forge::Gitlab, &zeros, "main"), Ok(Push::Ignore(_))));
    }

    #[test]
    fn malformed_pushes_are_refused_without_echo() {
        let cases = [
            json!({ "after": SHA }),
            json!({ "ref": "refs/heads/main" }),
            json!({ "ref": 7, "after": SHA }),
            json!({ "ref": "refs/heads/main", "after": "--upload-pack=x" }),
            json!({ "ref": "refs/heads/main", "after": "abc1234" }),
            json!({ "ref": "refs/heads/main", "after": format!("{}z", &SHA[..39]) }),
            json!(["refs/heads/main"]),
        ];
        for p in cases {
            let e = push(Forge::Github, &p, "main").expect_err("refused");
            assert!(!e.to_string().contains("upload-pack"), "{e}");
        }
    }

    #[test]
    fn headers_are_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(delivery_id(Forge::Github, &h), Ok(None));
        assert_eq!(event_name(Forge::Github, &h), Err(PayloadError::MissingHeader("x-github-event")));
        h.insert("x-gitlab-webhook-uuid", "w-1".parse().expect("value"));
        assert_eq!(delivery_id(Forge::Gitlab, &h), Ok(Some("w-1".into())));
        h.insert("x-gitlab-event-uuid", "e-1".parse().expect("value"));
        assert_eq!(delivery_id(Forge::Gitlab, &h), Ok(Some("e-1".into())));
        h.insert("x-github-delivery", "a b".parse().expect("value"));
        assert!(delivery_id(Forge::Github, &h).is_err());
        h.insert("x-github-delivery", "$(id)".parse().expect("value"));
        assert!(delivery_id(Forge::Github, &h).is_err());
        h.insert("x-github-delivery", "x".repeat(129).parse().expect("value"));
        assert!(delivery_id(Forge::Github, &h).is_err());
        assert_eq!(idempotency_key(Forge::Gitlab, &h), Ok(None));
        h.insert("idempotency-key", "908a6d9e-45fd-46c8-97e6-c4f350f219dd".parse().expect("value"));
        assert_eq!(
            idempotency_key(Forge::Gitlab, &h),
            Ok(Some("908a6d9e-45fd-46c8-97e6-c4f350f219dd".into()))
        );
        assert_eq!(idempotency_key(Forge::Github, &h), Ok(None), "GitLab's header only");
        h.insert("idempotency-key", "k; DROP".parse().expect("value"));
        assert_eq!(idempotency_key(Forge::Gitlab, &h), Err(PayloadError::MalformedHeader("idempotency-key")));
        assert_eq!(classify(Forge::Gitlab, "Push Hook"), EventKind::Push);
        assert_eq!(classify(Forge::Gitlab, "push"), EventKind::Other);
        assert_eq!(classify(Forge::Github, "ping"), EventKind::Ping);
        assert_eq!(classify(Forge::Gitea, "issues"), EventKind::Other);
    }
}
