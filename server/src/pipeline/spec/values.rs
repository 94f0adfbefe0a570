//! Field grammars of the pipeline file: names, durations, paths, images and
//! environment maps. Image references and environment names go through
//! `crate::validate`, the same checks the rest of Slipway uses.

use std::time::Duration;

use super::walk::{index_path, key_path, Walk, DOCKER_SOCKET};
use super::yaml::{Node, ScalarKind, Value};
use super::EnvValue;
use crate::validate;

/// Longest step name (a DNS label's length).
pub const MAX_NAME: usize = 63;
/// Longest command line, in bytes.
pub const MAX_COMMAND: usize = 64 * 1024;
/// Longest path or glob, in bytes.
pub const MAX_PATH: usize = 1024;

/// A step name: 1 to 63 of letters, digits, `-`, `_`, `.`, starting with a
/// letter or digit.
pub(super) fn step_name(w: &mut Walk, node: &Node, path: &str) -> Option<String> {
    let name = w.string(node, path)?;
    let ok_chars = name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    let first_ok = name.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || !first_ok {
        w.err(
            node.at,
            path,
            format!(
                "must be 1 to {MAX_NAME} letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        );
        return None;
    }
    Some(name)
}

/// A service name, which is its host name on the run's network: a
/// lowercase DNS label (`[a-z0-9]`, inner `-`, at most 63).
pub(super) fn service_name(w: &mut Walk, name: &str, at: super::Position, path: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !b.is_empty()
        && b.len() <= MAX_NAME
        && b.iter().all(|c| alnum(c) || *c == b'-')
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum);
    if !ok {
        w.err(
            at,
            path,
            "a service name is its host name: 1 to 63 lowercase letters, digits or '-', \
             starting and ending with a letter or digit",
        );
    }
    ok
}

/// A Docker image reference (never the Docker socket).
pub(super) fn image(w: &mut Walk, node: &Node, path: &str) -> Option<String> {
    let raw = w.string(node, path)?;
    if raw.contains("docker.sock") {
        w.err(node.at, path, DOCKER_SOCKET);
        return None;
    }
    match validate::image_ref(&raw) {
        Ok(v) => Some(v),
        Err(e) => {
            w.err(node.at, path, e.message);
            None
        }
    }
}

/// A duration: whole seconds (`90`) or a number with a unit, several
/// allowed (`500ms`, `90s`, `10m`, `1h`, `1m30s`), in `min..=max`.
pub(super) fn duration(
    w: &mut Walk,
    node: &Node,
    path: &str,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let parsed = match &node.value {
        Value::Scalar(s) if s.kind == ScalarKind::Int => s.text.parse::<u64>().ok().map(Duration::from_secs),
        Value::Scalar(s) if s.kind == ScalarKind::Str => parse_duration(&s.text),
        _ => {
            w.err(
                node.at,
                path,
                format!("must be a duration such as 90s, 10m or 1h, not {}", node.describe()),
            );
            return None;
        }
    };
    let Some(d) = parsed else {
        w.err(node.at, path, "must be a duration such as 90s, 10m, 1h or 1m30s (units: ms, s, m, h)");
        return None;
    };
    if d < min || d > max {
        w.err(node.at, path, format!("must be between {} and {}", show(min), show(max)));
        return None;
    }
    Some(d)
}

/// `1h`, `10m`, `90s`, `500ms` for messages.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
        m if m % 1000 == 0 => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(part)?;
    }
    Some(total)
}

/// An absolute path inside the container: `/`, no `..`, no control
/// characters.
pub(super) fn workdir(w: &mut Walk, node: &Node, path: &str) -> Option<String> {
    let dir = w.line(node, path, MAX_PATH)?;
    if !dir.starts_with('/') {
        w.err(node.at, path, "must be an absolute path inside the container, e.g. /workspace/app");
        return None;
    }
    if dir.split('/').any(|c| c == "..") {
        w.err(node.at, path, "must not contain '..'");
        return None;
    }
    Some(dir)
}

/// `environment`: NAME → string (numbers and bools as written) or
/// `{from_secret: NAME}`.
pub(super) fn environment(w: &mut Walk, node: &Node, path: &str) -> Option<Vec<(String, EnvValue)>> {
    let fields = w.map(node, path)?;
    let mut out = Vec::with_capacity(fields.entries.len());
    let mut ok = true;
    for (name, key, value) in &fields.entries {
        let field = key_path(path, name);
        if let Err(e) = validate::env_name(name) {
            w.err(key.at, &field, e.message);
            ok = false;
            continue;
        }
        match env_value(w, value, &field) {
            Some(v) => out.push(((*name).to_string(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn env_value(w: &mut Walk, node: &Node, path: &str) -> Option<EnvValue> {
    if let Value::Map(_) = &node.value {
        let fields = w.fields(node, path, &["from_secret"], "an environment value")?;
        let Some(secret) = fields.get("from_secret") else {
            w.err(node.at, path, "a map value must be {from_secret: NAME}");
            return None;
        };
        let field = fields.path_of("from_secret");
        let name = w.string(secret, &field)?;
        if let Err(e) = validate::env_name(&name) {
            w.err(secret.at, &field, format!("must name a secret env var of the service: {}", e.message));
            return None;
        }
        if fields.entries.len() != 1 {
            return None;
        }
        return Some(EnvValue::Secret(name));
    }
    let text = w.text(node, path)?;
    if let Err(e) = validate::env_value(&text) {
        w.err(node.at, path, e.message);
        return None;
    }
    Some(EnvValue::Literal(text))
}

/// A command for a service or health check: a list is an argument vector,
/// a string one shell line (run by `/bin/sh -c` inside the container).
pub(super) fn command(w: &mut Walk, node: &Node, path: &str) -> Option<super::Command> {
    match &node.value {
        Value::Seq(items) => {
            if items.is_empty() {
                w.err(node.at, path, "must not be an empty list");
                return None;
            }
            let mut argv = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let field = index_path(path, i);
                match w.text(item, &field) {
                    Some(a) if a.len() <= MAX_COMMAND && !a.contains('\0') => argv.push(a),
                    Some(_) => {
                        w.err(item.at, &field, format!("must be at most {MAX_COMMAND} bytes, without NUL"));
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            ok.then_some(super::Command::Argv(argv))
        }
        Value::Scalar(s) if s.kind == ScalarKind::Str => match w.string(node, path) {
            Some(line) if line.trim().is_empty() => {
                w.err(node.at, path, "must not be empty");
                None
            }
            Some(line) if line.len() > MAX_COMMAND || line.contains('\0') => {
                w.err(node.at, path, format!("must be at most {MAX_COMMAND} bytes, without NUL"));
                None
            }
            Some(line) => Some(super::Command::Shell(line)),
            None => None,
        },
        _ => {
            w.err(node.at, path, format!("must be a list of strings or a string, not {}", node.describe()));
            None
        }
    }
}
