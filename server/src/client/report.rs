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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_lists_steps_with_status_duration_exit_code_and_services_with_health() {
        let json = serde_json::json!({
            "build": { "id": 7, "service_id": 1, "number": 3, "job_id": null, "commit_sha": "0123456789abcdef",
                "git_ref": "main", "trigger": "manual", "actor": null, "status": "failed", "image_id": null,
                "tags": [], "phase": null, "progress": 100, "attempt": 1, "error": null,
                "created_at": "2026-12-06T00:00:00.000Z", "started_at": null, "finished_at": null,
                "queued_ms": 5, "duration_ms": 2500, "image_removed": false, "build_only": true, "pushed_ref": null },
            "commit": "0123456789abcdef", "ref": "main", "event": "manual", "trigger": "manual", "status": "failed",
            "pipeline": ".slipway.yml", "pipeline_errors": [], "queued_ms": 5, "duration_ms": 2500,
            "steps": [step("lint", "commands", "success", Some(0), &[], None),
                      step("unit", "commands", "failure", Some(3), &["lint"], None)],
            "services": [step("db", "service", "success", None, &[], Some(1200))],
            "variants": [{ "index": 0, "name": "default", "status": "failure", "steps_total": 2, "steps_passed": 1 }]
        });
        let report: BuildReport = match serde_json::from_value(json) {
            Ok(r) => r,
            Err(e) => panic!("the report parses: {e}"),
        };
        let out = text(&report);
        assert!(out.starts_with("build #3 (id 7) failed main 0123456789ab\n"), "{out}");
        assert!(
            out.lines().any(|l| l.contains("unit")
                && l.contains("failure")
                && l.contains("exit 3")
                && l.contains("after lint")
                && l.contains("1.0s")),
            "{out}"
        );
        assert!(out.contains("db success healthy after 1.2s"), "{out}");
    }

    fn step(
        name: &str,
        kind: &str,
        status: &str,
        exit: Option<i64>,
        deps: &[&str],
        healthy: Option<i64>,
    ) -> serde_json::Value {
        serde_json::json!({ "variant": 0, "variant_name": "default", "name": name, "kind": kind, "status": status,
            "exit_code": exit, "oom": false, "ignored": false, "depends_on": deps, "error": null, "line": 3,
            "started_at": null, "finished_at": null, "duration_ms": 1000, "healthy_ms": healthy })
    }
}
