//! The step graph: who waits for whom. If no step has `depends_on`, each
//! step waits for the one before it (file order); otherwise each step waits
//! for exactly the steps it names (none when it names none).

use super::Step;

/// Whether the steps form a DAG (some step has `depends_on`, even `[]`).
pub fn is_dag(steps: &[Step]) -> bool {
    steps.iter().any(|s| s.depends_on.is_some())
}

/// A `depends_on` entry that names no step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStep {
    pub step: usize,
    pub entry: usize,
    pub name: String,
}

/// Each step's direct dependencies, as indices into `steps`.
pub fn dependencies(steps: &[Step]) -> Result<Vec<Vec<usize>>, Vec<UnknownStep>> {
    if !is_dag(steps) {
        return Ok((0..steps.len()).map(|i| if i == 0 { Vec::new() } else { vec![i - 1] }).collect());
    }
    let mut unknown = Vec::new();
    let deps = steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let names = step.depends_on.as_deref().unwrap_or_default();
            names
                .iter()
                .enumerate()
                .filter_map(|(entry, name)| {
                    let found = steps.iter().position(|s| &s.name == name);
                    if found.is_none() {
                        unknown.push(UnknownStep { step: i, entry, name: name.clone() });
                    }
                    found
                })
                .collect()
        })
        .collect();
    if unknown.is_empty() {
        Ok(deps)
    } else {
        Err(unknown)
    }
}

/// A cycle, if there is one: steps `[a, b, c]` where a waits for b, b for
/// c and c for a; it starts at its lowest index.
pub fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    for root in 0..deps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Depth-first, without recursion: (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            let Some(&next) = deps[node].get(*edge) else {
                mark[node] = Mark::Done;
                stack.pop();
                continue;
            };
            *edge += 1;
            match mark.get(next).copied() {
                Some(Mark::New) => {
                    mark[next] = Mark::Open;
                    stack.push((next, 0));
                }
                Some(Mark::Open) => {
                    let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                    let lowest = cycle.iter().enumerate().min_by_key(|(_, n)| **n).map_or(0, |(i, _)| i);
                    cycle.rotate_left(lowest);
                    return Some(cycle);
                }
                _ => {}
            }
        }
    }
    None
}

/// Whether `from` waits for `to`, directly or through other steps.
pub fn waits_for(deps: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut todo = vec![from];
    while let Some(n) = todo.pop() {
        for &d in deps.get(n).map(Vec::as_slice).unwrap_or_default() {
            if d == to {
                return true;
            }
            if let Some(seen) = seen.get_mut(d).filter(|s| !**s) {
                *seen = true;
                todo.push(d);
            }
        }
    }
    false
}
