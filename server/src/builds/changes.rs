//! The files a run changed, for the `path` filters of its pipeline's
//! `when`: the difference between this run's commit and the commit of the
//! last successful run of the same branch. A failed or cancelled run's
//! changes are thus looked at again by the next run, so no change goes
//! untested because a path filter skipped it.

use super::job::Running;
use crate::{
    engine::Engine,
    logs::{LogStream, LogWriter},
    validate,
};

/// How many earlier runs are looked through for the last success.
const LOOK_BACK: i64 = 200;

/// The changed paths, or `None` when they cannot be known (a tag, the
/// branch's first successful run, a fetch the server refused): then every
/// `path` filter matches, and the log says why.
pub async fn since_last_success(
    engine: &Engine,
    job: &Running<'_>,
    branch: Option<&str>,
    log: &mut LogWriter,
) -> Option<Vec<String>> {
    let found = async {
        let Some(branch) = branch else { return Ok(None) };
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT git_ref, commit_sha FROM builds WHERE service_id = ? AND id < ? AND status = 'succeeded' \
             AND commit_sha IS NOT NULL ORDER BY id DESC LIMIT ?",
        )
        .bind(job.service.id)
        .bind(job.build.id)
        .bind(LOOK_BACK)
        .fetch_all(&engine.db)
        .await?;
        let service_branch = &job.service.spec.branch;
        let previous =
            rows.into_iter().find(|(git_ref, _)| branch_of(git_ref, service_branch) == Some(branch));
        let Some((_, sha)) = previous else { return anyhow::Ok(None) };
        let url = job.service.real_git_url(&engine.secrets)?;
        let paths = crate::git::changed_paths(&url, &engine.workspace(job.build.id), &sha, log).await?;
        anyhow::Ok(Some(paths))
    }
    .await;
    let why = match found {
        Ok(Some(paths)) => return Some(paths),
        Ok(None) => "no earlier successful run of this branch".to_string(),
        Err(e) => format!("{e:#}"),
    };
    let text = format!("Changed files unknown ({why}): every path filter matches");
    if let Err(e) = log.line(LogStream::System, &text).await {
        tracing::warn!(error = %e, "cannot write to the build log");
    }
    None
}

/// Why a pushed run of a service with `watch_paths` is skipped: none of the
/// files changed since the branch's last successful run matches one of the
/// globs. `None` (it runs): a manual or tag run, no `watch_paths`, or the
/// changed files unknown.
pub async fn unwatched(engine: &Engine, job: &Running<'_>, log: &mut LogWriter) -> Option<String> {
    let watch = &job.service.spec.watch_paths;
    let build = job.build;
    if watch.is_empty() || build.trigger != "webhook" || build.git_ref.starts_with("refs/tags/") {
        return None;
    }
    let globs = match crate::pipeline::spec::Globs::new(watch.clone()) {
        Ok(globs) => globs,
        Err(why) => {
            tracing::warn!(%why, "stored watch_paths do not compile; building");
            return None;
        }
    };
    let branch = branch_of(&build.git_ref, &job.service.spec.branch);
    let changed = since_last_success(engine, job, branch, log).await?;
    if changed.iter().any(|path| globs.is_match(path)) {
        return None;
    }
    Some(format!(
        "no changed file matches watch_paths ({}); {} file(s) changed since the last successful run",
        watch.join(", "),
        changed.len()
    ))
}

/// The branch a run of `git_ref` built: a commit id is the service's
/// branch (webhooks build exactly the pushed commit), a tag is no branch.
pub fn branch_of<'a>(git_ref: &'a str, service_branch: &'a str) -> Option<&'a str> {
    if git_ref.starts_with("refs/tags/") {
        return None;
    }
    if validate::commit_sha(git_ref).is_ok() {
        return Some(service_branch);
    }
    Some(git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref))
}

#[cfg(test)]
mod tests {
    use super::branch_of;

    #[test]
    fn a_commit_is_the_service_branch_and_a_tag_no_branch() {
        assert_eq!(branch_of(&"a".repeat(40), "main"), Some("main"));
        assert_eq!(branch_of("refs/tags/v1", "main"), None);
        assert_eq!(branch_of("refs/heads/dev", "main"), Some("dev"));
        assert_eq!(branch_of("dev", "main"), Some("dev"));
    }
}
