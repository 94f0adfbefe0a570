//! `when` against a run's [`Context`]: branch, event and path are known
//! before the run; `status` is the scheduler's (see [`super::Gate`]).

use super::Context;
use crate::pipeline::spec::{Condition, PathFilter};

/// Whether the parts of `c` known before the run (branch, event, path)
/// hold. A `branch` filter never matches a run without a branch (a tag);
/// unknown or empty changed paths match every `path` filter.
pub fn condition_matches(c: &Condition, ctx: &Context) -> bool {
    let branch_ok = c.branch.as_ref().is_none_or(|g| ctx.branch.as_deref().is_some_and(|b| g.is_match(b)));
    let event_ok = c.event.as_ref().is_none_or(|events| events.contains(&ctx.event));
    let path_ok = c.path.as_ref().is_none_or(|f| paths_match(f, ctx.changed_paths.as_deref()));
    branch_ok && event_ok && path_ok
}

/// Some changed path is included and not excluded.
fn paths_match(filter: &PathFilter, changed: Option<&[String]>) -> bool {
    let Some(changed) = changed.filter(|c| !c.is_empty()) else {
        return true;
    };
    changed.iter().any(|p| {
        filter.include.as_ref().is_none_or(|g| g.is_match(p))
            && !filter.exclude.as_ref().is_some_and(|g| g.is_match(p))
    })
}
