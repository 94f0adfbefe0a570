//! `when`: a map of conditions (all must hold), or a list of such maps (any
//! one must hold). Globs are checked when the file is read.

use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::values::MAX_PATH;
use super::walk::{index_path, Walk};
use super::yaml::{Node, Value};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Push,
    Tag,
    PullRequest,
    Manual,
}

impl Event {
    pub const ALL: [Event; 4] = [Event::Push, Event::Tag, Event::PullRequest, Event::Manual];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Push => "push",
            Event::Tag => "tag",
            Event::PullRequest => "pull_request",
            Event::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `when.status`: how a step's dependencies ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    Success,
    Failure,
}

/// Glob patterns, compiled (`*` stays inside one `/` segment, `**` crosses
/// them).
#[derive(Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Globs {
    /// Compiles `patterns`; the error names the first bad one.
    pub fn new(patterns: Vec<String>) -> Result<Globs, String> {
        let mut builder = GlobSetBuilder::new();
        for p in &patterns {
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("'{p}' is not a valid glob: {}", e.kind()))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| format!("invalid glob: {}", e.kind()))?;
        Ok(Globs { patterns, set })
    }

    pub fn is_match(&self, candidate: &str) -> bool {
        self.set.is_match(candidate)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl PartialEq for Globs {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl fmt::Debug for Globs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Globs").field(&self.patterns).finish()
    }
}

/// `path`: a glob list (include), or `{include, exclude}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathFilter {
    /// `None`: every path is included.
    pub include: Option<Globs>,
    pub exclude: Option<Globs>,
}

/// One entry of `when`: every key given must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    pub branch: Option<Globs>,
    pub event: Option<Vec<Event>>,
    pub path: Option<PathFilter>,
    /// Only in a step's `when`; `None` means `[success]`.
    pub status: Option<Vec<StatusFilter>>,
}

/// `when`: any one of the conditions (a map is a list of one).
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    pub any_of: Vec<Condition>,
}

/// `status` is read everywhere so that the top-level `when` can say why it
/// is refused there.
const KEYS: &[&str] = &["branch", "event", "path", "status"];

/// Reads `when`; `step` allows `status`.
pub(super) fn parse(w: &mut Walk, node: &Node, path: &str, step: bool) -> Option<When> {
    match &node.value {
        Value::Seq(items) => {
            if items.is_empty() {
                w.err(node.at, path, "must not be an empty list");
                return None;
            }
            let mut any_of = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match condition(w, item, &index_path(path, i), step) {
                    Some(c) => any_of.push(c),
                    None => ok = false,
                }
            }
            ok.then_some(When { any_of })
        }
        Value::Map(_) => condition(w, node, path, step).map(|c| When { any_of: vec![c] }),
        _ => {
            w.err(
                node.at,
                path,
                format!("must be a map of conditions or a list of them, not {}", node.describe()),
            );
            None
        }
    }
}

fn condition(w: &mut Walk, node: &Node, path: &str, step: bool) -> Option<Condition> {
    let fields = w.fields(node, path, KEYS, "when")?;
    let mut ok = true;
    let mut c = Condition::default();
    if !step {
        if let Some((_, k, _)) = fields.entries.iter().find(|(k, _, _)| *k == "status") {
            w.err(k.at, &fields.path_of("status"), "status is only allowed in a step's when");
            ok = false;
        }
    }
    if let Some(n) = fields.get("branch") {
        c.branch = globs(w, n, &fields.path_of("branch"));
        ok &= c.branch.is_some();
    }
    if let Some(n) = fields.get("event") {
        let field = fields.path_of("event");
        c.event = names(w, n, &field, Event::parse, "push, tag, pull_request, manual");
        ok &= c.event.is_some();
    }
    if let Some(n) = fields.get("path") {
        c.path = path_filter(w, n, &fields.path_of("path"));
        ok &= c.path.is_some();
    }
    if let Some(n) = fields.get("status").filter(|_| step) {
        let parse = |s: &str| match s {
            "success" => Some(StatusFilter::Success),
            "failure" => Some(StatusFilter::Failure),
            _ => None,
        };
        c.status = names(w, n, &fields.path_of("status"), parse, "success, failure");
        ok &= c.status.is_some();
    }
    ok.then_some(c)
}

fn names<T: PartialEq>(
    w: &mut Walk,
    node: &Node,
    path: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Option<Vec<T>> {
    let list = w.one_or_many(node, path, 64)?;
    let multiple = matches!(node.value, Value::Seq(_));
    let mut out = Vec::with_capacity(list.len());
    let mut ok = true;
    for (i, (name, at)) in list.iter().enumerate() {
        let field = if multiple { index_path(path, i) } else { path.to_string() };
        match parse(name) {
            Some(v) if !out.contains(&v) => out.push(v),
            Some(_) => {
                w.err(*at, &field, format!("'{name}' is listed twice"));
                ok = false;
            }
            None => {
                w.err(*at, &field, format!("unknown value '{name}'; allowed: {allowed}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn globs(w: &mut Walk, node: &Node, path: &str) -> Option<Globs> {
    let list = w.one_or_many(node, path, MAX_PATH)?;
    let multiple = matches!(node.value, Value::Seq(_));
    for (i, (pattern, at)) in list.iter().enumerate() {
        if let Err(why) = Globs::new(vec![pattern.clone()]) {
            let field = if multiple { index_path(path, i) } else { path.to_string() };
            w.err(*at, &field, why);
            return None;
        }
    }
    match Globs::new(list.into_iter().map(|(p, _)| p).collect()) {
        Ok(g) => Some(g),
        Err(why) => {
            w.err(node.at, path, why);
            None
        }
    }
}

fn path_filter(w: &mut Walk, node: &Node, path: &str) -> Option<PathFilter> {
    if !matches!(node.value, Value::Map(_)) {
        return globs(w, node, path).map(|g| PathFilter { include: Some(g), exclude: None });
    }
    let fields = w.fields(node, path, &["include", "exclude"], "when.path")?;
    if fields.entries.is_empty() {
        w.err(node.at, path, "needs include or exclude");
        return None;
    }
    let mut ok = true;
    let mut filter = PathFilter { include: None, exclude: None };
    if let Some(n) = fields.get("include") {
        filter.include = globs(w, n, &fields.path_of("include"));
        ok &= filter.include.is_some();
    }
    if let Some(n) = fields.get("exclude") {
        filter.exclude = globs(w, n, &fields.path_of("exclude"));
        ok &= filter.exclude.is_some();
    }
    ok.then_some(filter)
}
