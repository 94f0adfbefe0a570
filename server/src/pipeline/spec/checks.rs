//! Checks across the whole file, after the walk: names, the step graph,
//! the build and deploy steps.

use super::graph as steps_graph;
use super::step::StepMeta;
use super::walk::Walk;
use super::{Service, Step, StepKind};

/// Service names are unique (a map) and distinct from step names, so a
/// name means one thing in logs and reports.
pub(super) fn names(w: &mut Walk, metas: &[StepMeta], services: &[Service]) {
    for service in services {
        if metas.iter().any(|m| m.name.as_ref() == Some(&service.name)) {
            w.err(
                service.position,
                &format!("services.{}", service.name),
                format!("'{}' is also a step's name; steps and services need distinct names", service.name),
            );
        }
    }
}

/// `depends_on` names steps, has no cycle; one build and one deploy at
/// most; steps that need the build's image come after it (or wait for it).
pub(super) fn graph(w: &mut Walk, steps: &[Step], metas: &[StepMeta]) {
    for (i, step) in steps.iter().enumerate() {
        for (entry, name) in step.depends_on.iter().flatten().enumerate() {
            if *name == step.name {
                let at = metas[i].deps_at.get(entry).copied().unwrap_or(metas[i].depends_at);
                w.err(at, &format!("steps[{i}].depends_on[{entry}]"), "a step cannot depend on itself");
            }
        }
    }
    let deps = match steps_graph::dependencies(steps) {
        Ok(deps) => deps,
        Err(unknown) => {
            for u in unknown {
                let at = metas[u.step].deps_at.get(u.entry).copied().unwrap_or(metas[u.step].depends_at);
                let field = format!("steps[{}].depends_on[{}]", u.step, u.entry);
                w.err(at, &field, format!("no step is named '{}'", u.name));
            }
            return;
        }
    };
    if let Some(cycle) = steps_graph::find_cycle(&deps) {
        let first = cycle[0];
        if cycle.len() > 1 {
            let mut names: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
            names.push(&steps[first].name);
            let field = format!("steps[{first}].depends_on");
            w.err(
                metas[first].depends_at,
                &field,
                format!("depends_on makes a cycle: {}", names.join(" → ")),
            );
        }
        return;
    }
    let build = single(w, steps, metas, |k| matches!(k, StepKind::Build(_)), "build");
    single(w, steps, metas, |k| matches!(k, StepKind::Deploy), "deploy");
    let dag = steps_graph::is_dag(steps);
    for (i, step) in steps.iter().enumerate() {
        if !step.kind.needs_build_image() {
            continue;
        }
        let key = if matches!(step.kind, StepKind::Deploy) { "deploy" } else { "from" };
        let field = format!("steps[{i}].{key}");
        let message = match build {
            None => "needs a build step in this pipeline".to_string(),
            Some(b) if !dag && b > i => format!("must come after the build step '{}'", steps[b].name),
            Some(b) if dag && !steps_graph::waits_for(&deps, i, b) => {
                format!("must depend on the build step '{}' (directly or through other steps)", steps[b].name)
            }
            Some(_) => continue,
        };
        w.err(metas[i].kind_at, &field, message);
    }
}

/// The index of the one step of a kind; refuses a second.
fn single(
    w: &mut Walk,
    steps: &[Step],
    metas: &[StepMeta],
    is: impl Fn(&StepKind) -> bool,
    what: &str,
) -> Option<usize> {
    let mut found = None;
    for (i, step) in steps.iter().enumerate() {
        if !is(&step.kind) {
            continue;
        }
        match found {
            None => found = Some(i),
            Some(first) => w.err(
                metas[i].kind_at,
                &format!("steps[{i}].{what}"),
                format!("only one {what} step is allowed; steps[{first}] is one already"),
            ),
        }
    }
    found
}
