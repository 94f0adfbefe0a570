//! One entry of `steps`: a command step (`image` + `commands`), a
//! `from: build` step, a `build` step or a `deploy` step.

use std::time::Duration;

use super::error::Position;
use super::values::{self, environment, MAX_COMMAND, MAX_NAME};
use super::walk::{index_path, Fields, Walk};
use super::yaml::{Node, ScalarKind, Value};
use super::{when, BuildStep, FailurePolicy, Step, StepKind};
use crate::validate;

/// Most steps one pipeline may have.
pub const MAX_STEPS: usize = 100;
/// Bounds of a step's `timeout`.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

const STEP_KEYS: &[&str] = &[
    "name",
    "image",
    "from",
    "commands",
    "build",
    "deploy",
    "environment",
    "workdir",
    "timeout",
    "failure",
    "depends_on",
    "when",
];
const KIND_KEYS: [&str; 4] = ["image", "from", "build", "deploy"];
/// Keys that only a step running commands can use.
const COMMAND_ONLY: [&str; 4] = ["commands", "environment", "workdir", "failure"];
const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args", "target"];

/// Where a step's references are, for the cross-checks after the walk.
#[derive(Debug, Default)]
pub(super) struct StepMeta {
    /// The name, when it is valid (even if the rest of the step is not).
    pub name: Option<String>,
    pub name_at: Position,
    /// The key that says the step's kind (`image`, `from`, `build`, `deploy`).
    pub kind_at: Position,
    /// The `depends_on` value, and each entry.
    pub depends_at: Position,
    pub deps_at: Vec<Position>,
}

pub(super) fn parse(w: &mut Walk, node: &Node, path: &str) -> (Option<Step>, StepMeta) {
    let mut meta = StepMeta::default();
    let Some(fields) = w.fields(node, path, STEP_KEYS, "a step") else {
        return (None, meta);
    };
    let step = read(w, &fields, &mut meta);
    (step, meta)
}

fn read(w: &mut Walk, fields: &Fields<'_>, meta: &mut StepMeta) -> Option<Step> {
    let kind_at = KIND_KEYS.into_iter().find(|k| fields.has(k)).map_or(fields.at, |k| fields.key_at(k));
    *meta = StepMeta { name: None, name_at: fields.at, kind_at, depends_at: fields.at, deps_at: Vec::new() };
    let name = match fields.get("name") {
        Some(n) => {
            meta.name_at = n.at;
            meta.name = values::step_name(w, n, &fields.path_of("name"));
            meta.name.clone()
        }
        None => {
            w.err(fields.at, &fields.path_of("name"), "every step needs a name");
            None
        }
    };
    let kind = kind(w, fields);
    let mut ok = true;
    let mut step_env = Vec::new();
    if let Some(n) = fields.get("environment") {
        match environment(w, n, &fields.path_of("environment")) {
            Some(e) => step_env = e,
            None => ok = false,
        }
    }
    let mut workdir = None;
    if let Some(n) = fields.get("workdir") {
        workdir = values::workdir(w, n, &fields.path_of("workdir"));
        ok &= workdir.is_some();
    }
    let mut timeout = None;
    if let Some(n) = fields.get("timeout") {
        timeout = values::duration(w, n, &fields.path_of("timeout"), MIN_TIMEOUT, MAX_TIMEOUT);
        ok &= timeout.is_some();
    }
    let mut failure = FailurePolicy::Fail;
    if let Some(n) = fields.get("failure") {
        match w.string(n, &fields.path_of("failure")).as_deref() {
            Some("ignore") => failure = FailurePolicy::Ignore,
            Some("fail") => {}
            Some(_) => {
                w.err(n.at, &fields.path_of("failure"), "must be 'ignore' or 'fail'");
                ok = false;
            }
            None => ok = false,
        }
    }
    let mut depends_on = None;
    if let Some(n) = fields.get("depends_on") {
        meta.depends_at = n.at;
        depends_on = dependencies(w, n, &fields.path_of("depends_on"), &mut meta.deps_at);
        ok &= depends_on.is_some();
    }
    let mut step_when = None;
    if let Some(n) = fields.get("when") {
        step_when = when::parse(w, n, &fields.path_of("when"), true);
        ok &= step_when.is_some();
    }
    let (name, kind) = (name?, kind?);
    let step = Step {
        name,
        kind,
        environment: step_env,
        workdir,
        timeout,
        failure,
        depends_on,
        when: step_when,
        position: fields.at,
    };
    ok.then_some(step)
}

/// The step's kind from which of `image`, `from`, `build`, `deploy` it has.
fn kind(w: &mut Walk, fields: &Fields<'_>) -> Option<StepKind> {
    let present: Vec<&str> = KIND_KEYS.into_iter().filter(|k| fields.has(k)).collect();
    let Some(&which) = present.first() else {
        w.err(
            fields.at,
            &fields.path,
            "a step needs one of image (with commands), from: build, build or deploy",
        );
        return None;
    };
    if let Some(&second) = present.get(1) {
        w.err(
            fields.key_at(second),
            &fields.path_of(second),
            format!("a step is one kind only: it cannot have both {which} and {second}"),
        );
        return None;
    }
    let value = fields.get(which)?;
    let field = fields.path_of(which);
    if which == "build" || which == "deploy" {
        let mut ok = true;
        for key in COMMAND_ONLY {
            if fields.has(key) {
                w.err(fields.key_at(key), &fields.path_of(key), format!("is not allowed on a {which} step"));
                ok = false;
            }
        }
        let kind = if which == "build" {
            build(w, value, &field).map(StepKind::Build)
        } else {
            match w.bool(value, &field) {
                Some(true) => Some(StepKind::Deploy),
                Some(false) => {
                    w.err(value.at, &field, "must be true (leave the step out to not deploy)");
                    None
                }
                None => None,
            }
        };
        return kind.filter(|_| ok);
    }
    let commands = match fields.get("commands") {
        Some(n) => commands(w, n, &fields.path_of("commands")),
        None => {
            w.err(
                fields.key_at(which),
                &fields.path_of("commands"),
                format!("a step with {which} needs commands"),
            );
            None
        }
    };
    if which == "image" {
        let image = values::image(w, value, &field);
        return Some(StepKind::Commands { image: image?, commands: commands? });
    }
    match w.string(value, &field).as_deref() {
        Some("build") => Some(StepKind::FromBuild { commands: commands? }),
        Some(_) => {
            w.err(value.at, &field, "from only takes 'build': the image this run's build step makes");
            None
        }
        None => None,
    }
}

/// `build: true`, `build:` (nothing) or `build: {context, dockerfile, args,
/// target}`; what is left out comes from the service's settings.
fn build(w: &mut Walk, node: &Node, path: &str) -> Option<BuildStep> {
    let mut out = BuildStep::default();
    match &node.value {
        Value::Scalar(s) if s.kind == ScalarKind::Bool(true) || s.kind == ScalarKind::Null => {
            return Some(out)
        }
        Value::Map(_) => {}
        _ => {
            w.err(
                node.at,
                path,
                format!("must be true or a map of {}, not {}", BUILD_KEYS.join(", "), node.describe()),
            );
            return None;
        }
    }
    let fields = w.fields(node, path, BUILD_KEYS, "build")?;
    let mut ok = true;
    for key in ["context", "dockerfile"] {
        let Some(n) = fields.get(key) else { continue };
        let field = fields.path_of(key);
        let Some(raw) = w.string(n, &field) else {
            ok = false;
            continue;
        };
        match validate::rel_path(if key == "context" { "context" } else { "dockerfile" }, &raw) {
            Ok(v) if key == "context" => out.context = Some(v),
            Ok(v) => out.dockerfile = Some(v),
            Err(e) => {
                w.err(n.at, &field, e.message);
                ok = false;
            }
        }
    }
    if let Some(n) = fields.get("target") {
        let field = fields.path_of("target");
        match w.string(n, &field).map(|t| validate::stage_name("target", &t)) {
            Some(Ok(t)) => out.target = Some(t),
            Some(Err(e)) => {
                w.err(n.at, &field, e.message);
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(n) = fields.get("args") {
        let field = fields.path_of("args");
        match build_args(w, n, &field) {
            Some(args) => out.args = args,
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn build_args(w: &mut Walk, node: &Node, path: &str) -> Option<Vec<(String, String)>> {
    let fields = w.map(node, path)?;
    let mut out = Vec::with_capacity(fields.entries.len());
    let mut ok = true;
    for (name, k, v) in &fields.entries {
        let field = fields.path_of(name);
        if let Err(e) = validate::build_arg_name(name) {
            w.err(k.at, &field, e.message);
            ok = false;
            continue;
        }
        if matches!(v.value, Value::Map(_)) {
            w.err(v.at, &field, "build args are stored in the image's history: secrets do not belong here");
            ok = false;
            continue;
        }
        match w.text(v, &field).map(|t| validate::env_value(&t)) {
            Some(Ok(t)) => out.push(((*name).to_string(), t)),
            Some(Err(e)) => {
                w.err(v.at, &field, e.message);
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `commands`: a non-empty list of lines, each run by `/bin/sh -e` in the
/// step's container. Block scalars (`- |`) may span lines.
fn commands(w: &mut Walk, node: &Node, path: &str) -> Option<Vec<String>> {
    let items = w.list(node, path)?;
    if items.is_empty() {
        w.err(node.at, path, "must list at least one command");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = index_path(path, i);
        let line = match &item.value {
            Value::Scalar(s) if s.kind != ScalarKind::Null => s.text.clone(),
            Value::Map(_) => {
                w.err(item.at, &field, "must be a string, not a map (quote a command that contains ': ')");
                ok = false;
                continue;
            }
            _ => {
                w.err(item.at, &field, format!("must be a string, not {}", item.describe()));
                ok = false;
                continue;
            }
        };
        if line.len() > MAX_COMMAND || line.contains('\0') {
            w.err(item.at, &field, format!("must be at most {MAX_COMMAND} bytes, without NUL"));
            ok = false;
        } else {
            out.push(line);
        }
    }
    ok.then_some(out)
}

/// `depends_on`: a list of step names (`[]`: start at once).
fn dependencies(w: &mut Walk, node: &Node, path: &str, at: &mut Vec<Position>) -> Option<Vec<String>> {
    let items = w.list(node, path)?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = index_path(path, i);
        let Some(name) = w.line(item, &field, MAX_NAME) else {
            ok = false;
            continue;
        };
        if out.contains(&name) {
            w.err(item.at, &field, format!("'{name}' is listed twice"));
            ok = false;
            continue;
        }
        out.push(name);
        at.push(item.at);
    }
    ok.then_some(out)
}
