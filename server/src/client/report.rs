//! `slipway report <build>` as text: the run, its steps (per variant when
//! there are several) and its services.

use std::fmt::Write;

use app::wire::{BuildReport, BuildStepView};

/// The report as lines of text.
pub fn text(r: &BuildReport) -> String {
    let mut out = String::new();
    let commit = r.commit.as_deref().map_or("", |c| &c[..c.len().min(12)]);
    let _ =
        writeln!(out, "build #{} (id {}) {} {} {}", r.build.number, r.build.id, r.status, r.git_ref, commit);
    let event = r.event.as_deref().unwrap_or("-");
    let pipeline = r.pipeline.as_deref().unwrap_or("-");
    let _ = writeln!(
        out,
        "trigger {} event {} pipeline {} queued {} took {}",
        r.trigger,
        event,
        pipeline,
        ms(r.queued_ms),
        ms(r.duration_ms)
    );
    for e in &r.pipeline_errors {
        let _ = writeln!(out, "error: line {}, column {}: {}: {}", e.line, e.column, e.field, e.message);
    }
    let several = r.variants.len() > 1;
    for v in &r.variants {
        if several {
            let _ = writeln!(
                out,
                "variant {} {} ({} of {} passed)",
                v.name, v.status, v.steps_passed, v.steps_total
            );
        }
        for s in r.steps.iter().filter(|s| s.variant == v.index) {
            let _ = writeln!(out, "  {}", step(s));
        }
    }
    if !r.services.is_empty() {
        let _ = writeln!(out, "services:");
        for s in &r.services {
            let health = match (&s.error, s.healthy_ms) {
                (Some(e), _) => e.clone(),
                (None, Some(h)) => format!("healthy after {}", ms(Some(h))),
                (None, None) => "not healthy".into(),
            };
            let _ = writeln!(out, "  {} {} {}", s.name, s.status, health);
        }
    }
    out
}

fn step(s: &BuildStepView) -> String {
    let mut line = format!("{:<20} {:<9} {:>8}", s.name, s.status, ms(s.duration_ms));
    if let Some(code) = s.exit_code {
        let _ = write!(line, " exit {code}");
    }
    if s.oom {
        line.push_str(" (out of memory)");
    }
    if s.ignored {
        line.push_str(" (failure ignored)");
    }
    if !s.depends_on.is_empty() {
        let _ = write!(line, " after {}", s.depends_on.join(", "));
    }
    if let Some(e) = &s.error {
        let _ = write!(line, ": {e}");
    }
    line
}

fn ms(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms < 1_000 => format!("{ms}ms"),
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        None => "-".into(),
    }
}
