//! The list settings of a service, checked: build arguments, platforms,
//! `deploy_after` names and `watch_paths` globs.

use std::collections::BTreeMap;

use super::MAX_BUILD_ARGS;
use crate::validate::{self, Problems, ValidationError};

/// Most `watch_paths` globs.
pub const MAX_WATCH_PATHS: usize = 32;
/// Longest `watch_paths` glob.
pub const MAX_WATCH_PATH: usize = 256;

/// Globs over paths relative to the repository: letters, digits, `-._/`,
/// `*` (within one segment), `?`, and `**` only as a whole segment; not
/// starting with `/`. Every such glob compiles.
pub(super) fn watch_paths(list: &[String], p: &mut Problems) -> Option<Vec<String>> {
    if list.len() > MAX_WATCH_PATHS {
        p.add("watch_paths", format!("at most {MAX_WATCH_PATHS} globs"));
        return None;
    }
    for glob in list {
        let chars_ok = glob.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._/*?".contains(&c));
        let bytes = glob.as_bytes();
        let recursive_ok = glob
            .match_indices("**")
            .all(|(i, _)| (i == 0 || bytes[i - 1] == b'/') && bytes.get(i + 2).is_none_or(|c| *c == b'/'));
        if glob.is_empty()
            || glob.len() > MAX_WATCH_PATH
            || glob.starts_with('/')
            || !chars_ok
            || !recursive_ok
        {
            p.add(
                "watch_paths",
                format!(
                    "{glob:?}: a glob of at most {MAX_WATCH_PATH} letters, digits, - . _ / * ?, relative to the \
                     repository, with ** only as a whole path segment"
                ),
            );
            return None;
        }
    }
    if let Err(why) = crate::pipeline::spec::Globs::new(list.to_vec()) {
        p.add("watch_paths", why);
        return None;
    }
    Some(list.to_vec())
}

/// Most services one names in `deploy_after`.
pub const MAX_DEPLOY_AFTER: usize = 32;

/// Service names (slugs), each once, in order.
pub(super) fn deploy_after(list: &[String], p: &mut Problems) -> Option<Vec<String>> {
    if list.len() > MAX_DEPLOY_AFTER {
        p.add("deploy_after", format!("at most {MAX_DEPLOY_AFTER} services"));
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        let name = p.check(validate::slug("deploy_after", name))?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Some(out)
}

/// Most platforms one service builds.
const MAX_PLATFORMS: usize = 4;

/// Known, distinct platforms, normalized; at most [`MAX_PLATFORMS`].
pub(super) fn platforms(list: &[String], p: &mut Problems) -> Option<Vec<String>> {
    if list.len() > MAX_PLATFORMS {
        p.add("platforms", format!("at most {MAX_PLATFORMS} platforms"));
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let platform = p.check(validate::platform(raw))?;
        if out.contains(&platform) {
            p.add("platforms", format!("{platform} is listed twice"));
            return None;
        }
        out.push(platform);
    }
    Some(out)
}

pub(super) fn build_args(
    args: &BTreeMap<String, String>,
    p: &mut Problems,
) -> Option<BTreeMap<String, String>> {
    if args.len() > MAX_BUILD_ARGS {
        p.add("build_args", format!("at most {MAX_BUILD_ARGS} entries"));
        return None;
    }
    let mut out = BTreeMap::new();
    for (name, value) in args {
        let name = p.check(validate::build_arg_name(name))?;
        let value = p
            .check(validate::env_value(value).map_err(|e| {
                ValidationError::new("build_args", format!("value of {name}: {}", e.message))
            }))?;
        out.insert(name, value);
    }
    Some(out)
}
