//! The pipeline file as a small marked tree, built from the YAML parser's
//! events (saphyr-parser) rather than a generic document type, so that:
//! - every node carries its 1-based line and column;
//! - scalars keep the text as written (`1.10` stays `1.10`, not `1.1`) with
//!   their YAML 1.2 core-schema type beside it (`no` is a string, not false);
//! - nesting depth and alias expansion are bounded while the tree is built
//!   (no recursion over attacker-sized depth, no "billion laughs");
//! - a key without a value points at the key, not at the next token.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver, Tag};

use super::error::Position;

/// Deepest nesting accepted (the format itself needs 6).
pub(super) const MAX_DEPTH: usize = 24;
/// Most nodes that anchors (`*name`) may copy in one file.
pub(super) const MAX_ALIAS_NODES: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub at: Position,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in file order, keys as nodes (their positions name the key).
    Map(Vec<(Node, Node)>),
    /// A node the format cannot use (a custom tag); the reason.
    Invalid(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scalar {
    /// The text as written (after YAML unquoting and folding).
    pub text: String,
    pub kind: ScalarKind,
}

/// The YAML 1.2 core-schema type of a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScalarKind {
    Null,
    Bool(bool),
    Int,
    Float,
    Str,
}

impl Node {
    /// What the node is, for "must be X, not Y" messages.
    pub(super) fn describe(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => "empty",
                ScalarKind::Bool(_) => "true/false",
                ScalarKind::Int | ScalarKind::Float => "a number",
                ScalarKind::Str => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
            Value::Invalid(_) => "an unsupported value",
        }
    }

    pub(super) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(Scalar { kind: ScalarKind::Null, .. }))
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
            _ => 0,
        }
    }
}

/// Why the text is not one YAML document the format can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LoadError {
    pub at: Position,
    pub message: String,
}

/// Parses `text` as exactly one YAML document.
pub(super) fn load(text: &str) -> Result<Node, LoadError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let parsed = parser.load(&mut builder, true);
    // The builder's own refusal came first (the parser goes on reading).
    if let Some(e) = builder.error {
        return Err(e);
    }
    if let Err(e) = parsed {
        let m = e.marker();
        return Err(LoadError {
            at: position(m.line(), m.col()),
            message: format!("invalid YAML: {}", e.info()),
        });
    }
    let mut docs = builder.docs.into_iter();
    match docs.next() {
        None => Err(LoadError { at: Position { line: 1, column: 1 }, message: "the file is empty".into() }),
        Some(doc) => Ok(doc),
    }
}

/// 1-based line and column from the parser's marker (line 1-based, column
/// 0-based).
fn position(line: usize, col: usize) -> Position {
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    Position { line: clamp(line), column: clamp(col.saturating_add(1)) }
}

fn span_start(span: &Span) -> Position {
    position(span.start.line(), span.start.col())
}

enum Frame {
    Seq {
        at: Position,
        anchor: usize,
        invalid: Option<&'static str>,
        items: Vec<Node>,
    },
    Map {
        at: Position,
        anchor: usize,
        invalid: Option<&'static str>,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    error: Option<LoadError>,
}

/// Tags name types; the format only honours the core schema's (`!!str 10`
/// is the string "10").
fn tag_kind(tag: Option<&Cow<'_, Tag>>) -> Result<Option<&'static str>, &'static str> {
    match tag {
        None => Ok(None),
        Some(t) if t.handle == "tag:yaml.org,2002:" || t.handle == "!!" => {
            Ok(Some(match t.suffix.as_str() {
                "str" => "str",
                "int" => "int",
                "float" => "float",
                "bool" => "bool",
                "null" => "null",
                "map" => "map",
                "seq" => "seq",
                _ => return Err("YAML tags are not supported here"),
            }))
        }
        Some(_) => Err("YAML tags are not supported here"),
    }
}

fn resolve_plain(text: &str) -> ScalarKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" => return ScalarKind::Bool(true),
        "false" | "False" | "FALSE" => return ScalarKind::Bool(false),
        ".inf" | "-.inf" | "+.inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN" => return ScalarKind::Float,
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let is_int = (!unsigned.is_empty() && unsigned.bytes().all(|c| c.is_ascii_digit()))
        || text
            .strip_prefix("0o")
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|c| (b'0'..=b'7').contains(&c)))
        || text.strip_prefix("0x").is_some_and(|r| !r.is_empty() && r.bytes().all(|c| c.is_ascii_hexdigit()));
    if is_int {
        return ScalarKind::Int;
    }
    if is_float(unsigned) {
        return ScalarKind::Float;
    }
    ScalarKind::Str
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

impl Builder {
    fn fail(&mut self, at: Position, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(LoadError { at, message: message.into() });
        }
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.docs.is_empty() {
                    self.docs.push(node);
                } else {
                    self.fail(node.at, "only one YAML document is allowed in a pipeline file");
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let mut value = node;
                    // `key:` with nothing after it: point at the key.
                    if value.is_null() && value.at > k.at && value.at.line != k.at.line {
                        value.at = k.at;
                    }
                    entries.push((k, value));
                }
            },
        }
    }

    fn open(&mut self, at: Position, anchor: usize, tag: Option<&Cow<'_, Tag>>, seq: bool) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(at, format!("the file nests deeper than {MAX_DEPTH} levels"));
            return;
        }
        let invalid = match tag_kind(tag) {
            Ok(None) => None,
            Ok(Some(kind)) if kind == if seq { "seq" } else { "map" } => None,
            Ok(Some(_)) => Some("this tag does not fit a collection"),
            Err(why) => Some(why),
        };
        self.stack.push(if seq {
            Frame::Seq { at, anchor, invalid, items: Vec::new() }
        } else {
            Frame::Map { at, anchor, invalid, entries: Vec::new(), key: None }
        });
    }

    fn close(&mut self) {
        let Some(frame) = self.stack.pop() else { return };
        let (node, anchor) = match frame {
            Frame::Seq { at, anchor, invalid, items } => {
                (Node { at, value: invalid.map_or(Value::Seq(items), Value::Invalid) }, anchor)
            }
            Frame::Map { at, anchor, invalid, entries, .. } => {
                (Node { at, value: invalid.map_or(Value::Map(entries), Value::Invalid) }, anchor)
            }
        };
        self.push_node(node, anchor);
    }

    fn scalar(
        &mut self,
        at: Position,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Cow<'_, Tag>>,
    ) {
        let value = match tag_kind(tag) {
            Err(why) => Value::Invalid(why),
            Ok(Some("str")) => Value::Scalar(Scalar { text: text.into_owned(), kind: ScalarKind::Str }),
            Ok(Some("map" | "seq")) => Value::Invalid("this tag does not fit a scalar"),
            Ok(Some(wanted)) => {
                let kind = resolve_plain(&text);
                let fits = matches!(
                    (wanted, kind),
                    ("int", ScalarKind::Int)
                        | ("float", ScalarKind::Float | ScalarKind::Int)
                        | ("bool", ScalarKind::Bool(_))
                        | ("null", ScalarKind::Null)
                );
                if fits {
                    Value::Scalar(Scalar { text: text.into_owned(), kind })
                } else {
                    Value::Invalid("the value does not fit its tag")
                }
            }
            Ok(None) => {
                let kind = if style == ScalarStyle::Plain { resolve_plain(&text) } else { ScalarKind::Str };
                Value::Scalar(Scalar { text: text.into_owned(), kind })
            }
        };
        self.push_node(Node { at, value }, anchor);
    }

    fn alias(&mut self, at: Position, id: usize) {
        let Some(target) = self.anchors.get(&id) else {
            self.fail(at, "this alias names no anchor");
            return;
        };
        let count = target.count();
        self.alias_nodes = self.alias_nodes.saturating_add(count);
        if self.alias_nodes > MAX_ALIAS_NODES {
            self.fail(at, format!("aliases copy more than {MAX_ALIAS_NODES} values"));
            return;
        }
        let mut node = target.clone();
        node.at = at;
        self.push_node(node, 0);
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        if self.error.is_some() {
            return;
        }
        let at = span_start(&span);
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) => {}
            Event::DocumentEnd => {
                // An empty document (`---` alone) is an empty pipeline.
                if self.stack.is_empty() && self.docs.is_empty() {
                    self.docs.push(Node {
                        at,
                        value: Value::Scalar(Scalar { text: String::new(), kind: ScalarKind::Null }),
                    });
                }
            }
            Event::Alias(id) => self.alias(at, id),
            Event::Scalar(text, style, anchor, tag) => self.scalar(at, text, style, anchor, tag.as_ref()),
            Event::SequenceStart(anchor, tag) => self.open(at, anchor, tag.as_ref(), true),
            Event::MappingStart(anchor, tag) => self.open(at, anchor, tag.as_ref(), false),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
        }
    }
}
