//! Typed reads of the marked tree: each read either returns the value or
//! notes a refusal naming the node's position and field path, so one walk
//! reports every problem of the file.

use super::error::{Errors, Position};
use super::yaml::{Node, ScalarKind, Value};

/// Keys refused anywhere in a step or service (and everywhere else), with
/// the reason: these would give a pipeline the host.
fn hostile(key: &str, value: &Node) -> Option<&'static str> {
    Some(match key {
        "privileged" => "privileged mode is never allowed in a pipeline",
        "volumes" | "mounts" | "binds" | "tmpfs" => {
            if mentions_docker_socket(value) {
                DOCKER_SOCKET
            } else {
                "host paths are never allowed in a pipeline: steps share the run's /workspace volume"
            }
        }
        "devices" => "host devices are never allowed in a pipeline",
        "network_mode" | "network" | "networks" => {
            if mentions(value, &|s| s.trim() == "host") {
                "the host network is never allowed in a pipeline"
            } else {
                "choosing a network is never allowed in a pipeline: steps and services share the run's own network"
            }
        }
        "pid" => "the host PID namespace is never allowed in a pipeline",
        "ipc" => "the host IPC namespace is never allowed in a pipeline",
        "uts" => "the host UTS namespace is never allowed in a pipeline",
        "cap_add" => "added capabilities are never allowed in a pipeline",
        "security_opt" => "security options are never allowed in a pipeline",
        "userns_mode" => "leaving the user namespace is never allowed in a pipeline",
        "docker_socket" => DOCKER_SOCKET,
        _ => return None,
    })
}

pub(super) const DOCKER_SOCKET: &str = "mounting the Docker socket is never allowed";

/// Whether any string in `node` names the Docker socket.
pub(super) fn mentions_docker_socket(node: &Node) -> bool {
    mentions(node, &|s| s.contains("docker.sock"))
}

fn mentions(node: &Node, pred: &dyn Fn(&str) -> bool) -> bool {
    match &node.value {
        Value::Scalar(s) => pred(&s.text),
        Value::Seq(items) => items.iter().any(|n| mentions(n, pred)),
        Value::Map(entries) => entries.iter().any(|(k, v)| mentions(k, pred) || mentions(v, pred)),
        Value::Invalid(_) => false,
    }
}

/// `parent.key` (or `key` at the top).
pub(super) fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub(super) fn index_path(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A map's entries with string keys, in file order.
pub(super) struct Fields<'n> {
    pub at: Position,
    pub path: String,
    pub entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _, _)| *k == key).map(|(_, _, v)| *v)
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The path of `key` inside this map.
    pub(super) fn path_of(&self, key: &str) -> String {
        key_path(&self.path, key)
    }

    /// The position of `key` itself.
    pub(super) fn key_at(&self, key: &str) -> Position {
        self.entries.iter().find(|(k, _, _)| *k == key).map_or(self.at, |(_, k, _)| k.at)
    }
}

/// The walk's refusals.
#[derive(Default)]
pub(super) struct Walk {
    pub errors: Errors,
}

impl Walk {
    pub(super) fn err(&mut self, at: Position, field: &str, message: impl Into<String>) {
        self.errors.add(at, field, message);
    }

    fn type_err(&mut self, node: &Node, field: &str, wanted: &str) {
        match &node.value {
            Value::Invalid(why) => self.err(node.at, field, *why),
            _ => self.err(node.at, field, format!("must be {wanted}, not {}", node.describe())),
        }
    }

    /// A map with string keys, each key once (refusals otherwise).
    pub(super) fn map<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let Value::Map(raw) = &node.value else {
            self.type_err(node, path, "a map");
            return None;
        };
        let mut entries: Vec<(&'n str, &'n Node, &'n Node)> = Vec::with_capacity(raw.len());
        let mut ok = true;
        for (k, v) in raw {
            let key = match &k.value {
                Value::Scalar(s) if !matches!(s.kind, ScalarKind::Null) => s.text.as_str(),
                _ => {
                    self.err(k.at, path, format!("keys must be names, not {}", k.describe()));
                    ok = false;
                    continue;
                }
            };
            if entries.iter().any(|(seen, _, _)| *seen == key) {
                self.err(k.at, &key_path(path, key), "this key appears twice");
                ok = false;
                continue;
            }
            entries.push((key, k, v));
        }
        ok.then(|| Fields { at: node.at, path: path.to_string(), entries })
    }

    /// A map whose keys are all in `allowed` (`what` names the map in the
    /// message). Hostile keys get their own message. Returns the map even
    /// when some keys are refused, so the rest is still checked.
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        let fields = self.map(node, path)?;
        for (key, k, v) in &fields.entries {
            let field = key_path(path, key);
            if let Some(why) = hostile(key, v) {
                self.err(k.at, &field, why);
            } else if *key == "<<" {
                self.err(k.at, &field, "merge keys (<<) are not supported");
            } else if !allowed.contains(key) {
                self.err(
                    k.at,
                    &field,
                    format!("unknown key '{key}' in {what}; allowed keys: {}", allowed.join(", ")),
                );
            }
        }
        Some(fields)
    }

    pub(super) fn list<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.type_err(node, path, "a list");
                None
            }
        }
    }

    /// A string (a quoted or plain scalar that is not a number, bool or
    /// null).
    pub(super) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => Some(s.text.clone()),
            _ => {
                self.type_err(node, path, "a string");
                None
            }
        }
    }

    /// A non-empty string without control characters.
    pub(super) fn line(&mut self, node: &Node, path: &str, max: usize) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.err(node.at, path, "must not be empty");
            return None;
        }
        if s.len() > max {
            self.err(node.at, path, format!("must be at most {max} bytes long"));
            return None;
        }
        if s.chars().any(char::is_control) {
            self.err(node.at, path, "must not contain control characters");
            return None;
        }
        Some(s)
    }

    /// A string, number or bool, as written (`1.10` stays `1.10`).
    pub(super) fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s) if s.kind != ScalarKind::Null => Some(s.text.clone()),
            _ => {
                self.type_err(node, path, "a string, number or true/false");
                None
            }
        }
    }

    pub(super) fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Scalar(s) => match s.kind {
                ScalarKind::Bool(b) => Some(b),
                _ => {
                    self.type_err(node, path, "true or false");
                    None
                }
            },
            _ => {
                self.type_err(node, path, "true or false");
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub(super) fn uint(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let parsed = match &node.value {
            Value::Scalar(s) if s.kind == ScalarKind::Int => s.text.parse::<u64>().ok(),
            _ => {
                self.type_err(node, path, "a whole number");
                return None;
            }
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.err(node.at, path, format!("must be between {min} and {max}"));
                None
            }
        }
    }

    /// A string or a list of strings (`branch: main`, `branch: [main, dev]`)
    /// with each entry's position.
    pub(super) fn one_or_many(
        &mut self,
        node: &Node,
        path: &str,
        max_len: usize,
    ) -> Option<Vec<(String, Position)>> {
        match &node.value {
            Value::Seq(items) => {
                if items.is_empty() {
                    self.err(node.at, path, "must not be an empty list");
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.line(item, &index_path(path, i), max_len) {
                        Some(s) => out.push((s, item.at)),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            Value::Scalar(s) if s.kind == ScalarKind::Str => {
                self.line(node, path, max_len).map(|s| vec![(s, node.at)])
            }
            _ => {
                self.type_err(node, path, "a string or a list of strings");
                None
            }
        }
    }
}
