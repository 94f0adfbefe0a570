//! `matrix`: a map of axes (every combination), or `{include: [...]}`
//! (exactly the combinations listed). At most [`MAX_COMBINATIONS`].

use super::walk::{index_path, key_path, Walk};
use super::yaml::{Node, Value};
use crate::validate;

/// Most variants one run may have.
pub const MAX_COMBINATIONS: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Axis name → values; every combination, the last axis varying fastest.
    Axes(Vec<(String, Vec<String>)>),
    /// Exactly these combinations, each axis name → value in file order.
    Include(Vec<Vec<(String, String)>>),
}

impl Matrix {
    /// How many variants the matrix makes (saturating).
    pub fn count(&self) -> usize {
        match self {
            Matrix::Axes(axes) => axes.iter().fold(1usize, |n, (_, values)| n.saturating_mul(values.len())),
            Matrix::Include(list) => list.len(),
        }
    }

    /// Every variant's axes as (name, value) pairs, in order.
    pub fn combinations(&self) -> Vec<Vec<(String, String)>> {
        match self {
            Matrix::Include(list) => list.clone(),
            Matrix::Axes(axes) => {
                let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
                for (name, values) in axes {
                    out = out
                        .into_iter()
                        .flat_map(|prefix| {
                            values.iter().map(move |v| {
                                let mut next = prefix.clone();
                                next.push((name.clone(), v.clone()));
                                next
                            })
                        })
                        .collect();
                }
                out
            }
        }
    }
}

pub(super) fn parse(w: &mut Walk, node: &Node, path: &str) -> Option<Matrix> {
    let fields = w.map(node, path)?;
    if fields.entries.is_empty() {
        w.err(node.at, path, "must have at least one axis, or include");
        return None;
    }
    let matrix = if let Some(include) = fields.get("include") {
        let mut ok = true;
        for (key, k, _) in &fields.entries {
            if *key != "include" {
                w.err(k.at, &key_path(path, key), "include cannot be combined with axes");
                ok = false;
            }
        }
        let list = include_list(w, include, &fields.path_of("include"));
        Matrix::Include(list.filter(|_| ok)?)
    } else {
        let mut axes = Vec::with_capacity(fields.entries.len());
        let mut ok = true;
        for (name, k, values) in &fields.entries {
            let field = key_path(path, name);
            if !axis_name(w, name, k, &field) {
                ok = false;
                continue;
            }
            match axis_values(w, values, &field) {
                Some(v) => axes.push(((*name).to_string(), v)),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        Matrix::Axes(axes)
    };
    let count = matrix.count();
    if count > MAX_COMBINATIONS {
        let shown = if count == usize::MAX { "more than 2^64".to_string() } else { count.to_string() };
        w.err(
            node.at,
            path,
            format!("matrix expands to {shown} combinations; the limit is {MAX_COMBINATIONS}"),
        );
        return None;
    }
    Some(matrix)
}

fn axis_name(w: &mut Walk, name: &str, key: &Node, field: &str) -> bool {
    match validate::env_name(name) {
        Ok(_) => true,
        Err(e) => {
            w.err(key.at, field, format!("an axis name is an environment variable name: {}", e.message));
            false
        }
    }
}

fn axis_value(w: &mut Walk, node: &Node, field: &str) -> Option<String> {
    let v = w.text(node, field)?;
    if let Err(e) = validate::env_value(&v) {
        w.err(node.at, field, e.message);
        return None;
    }
    Some(v)
}

fn axis_values(w: &mut Walk, node: &Node, path: &str) -> Option<Vec<String>> {
    let items = w.list(node, path)?;
    if items.is_empty() {
        w.err(node.at, path, "must list at least one value");
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = index_path(path, i);
        match axis_value(w, item, &field) {
            Some(v) if out.contains(&v) => {
                w.err(item.at, &field, format!("'{v}' is listed twice"));
                ok = false;
            }
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn include_list(w: &mut Walk, node: &Node, path: &str) -> Option<Vec<Vec<(String, String)>>> {
    let items = w.list(node, path)?;
    if items.is_empty() {
        w.err(node.at, path, "must list at least one combination");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = index_path(path, i);
        let Some(entry) = w.map(item, &field) else {
            ok = false;
            continue;
        };
        if entry.entries.is_empty() {
            w.err(item.at, &field, "must set at least one axis");
            ok = false;
            continue;
        }
        let mut combo = Vec::with_capacity(entry.entries.len());
        for (name, k, v) in &entry.entries {
            let axis = key_path(&field, name);
            if !axis_name(w, name, k, &axis) {
                ok = false;
                continue;
            }
            if matches!(v.value, Value::Seq(_) | Value::Map(_)) {
                w.err(v.at, &axis, "an include entry sets one value per axis");
                ok = false;
                continue;
            }
            match axis_value(w, v, &axis) {
                Some(value) => combo.push(((*name).to_string(), value)),
                None => ok = false,
            }
        }
        out.push(combo);
    }
    ok.then_some(out)
}
