//! Which files changed since the previous run of a branch: what the `path`
//! filters of a pipeline's `when` are matched against.

use std::path::Path;

use anyhow::Context;

use super::{log_system, Git};
use crate::logs::LogWriter;
use crate::validate;

/// The paths that differ between commit `since` and the checkout's `HEAD`
/// in `dest` (a checkout made by [`super::checkout`] from `url`). `since`
/// is fetched alone (`--depth 1`): comparing two trees needs no history.
pub async fn changed_paths(
    url: &str,
    dest: &Path,
    since: &str,
    log: &mut LogWriter,
) -> anyhow::Result<Vec<String>> {
    let since = validate::commit_sha(since)?;
    let (bare_url, credentials) = validate::split_credentials(url)?;
    let git = Git::new(dest, &bare_url, credentials.as_ref());
    git.fetch_one(&since, log).await?;
    let out = git
        .run(&["diff", "--name-only", "-z", "--no-renames", "--end-of-options", &since, "HEAD", "--"], log)
        .await
        .context("git diff failed")?;
    let paths: Vec<String> = out.split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect();
    log_system(log, &format!("{} files changed since {}", paths.len(), &since[..since.len().min(7)])).await?;
    Ok(paths)
}
