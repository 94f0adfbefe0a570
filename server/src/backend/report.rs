//! The run report as wire types.

use app::wire::{BuildReport, BuildStepView, PipelineErrorView, VariantView};

use super::convert;
use crate::{
    build_report::{variant_status, Report, StepRow},
    history::duration_ms,
};

pub fn report(r: Report) -> BuildReport {
    let now = crate::db::now_rfc3339();
    let mut variants: Vec<VariantView> = Vec::new();
    let mut indexes: Vec<i64> = r.steps.iter().map(|s| s.variant).collect();
    indexes.dedup();
    for index in indexes {
        let of = r.steps.iter().filter(|s| s.variant == index && !s.is_service());
        let name =
            r.steps.iter().find(|s| s.variant == index).map(|s| s.variant_name.clone()).unwrap_or_default();
        let status = variant_status(r.steps.iter().filter(|s| s.variant == index)).to_string();
        let steps_total = i64::try_from(of.clone().count()).unwrap_or(i64::MAX);
        let steps_passed = i64::try_from(of.filter(|s| s.status == "success").count()).unwrap_or(i64::MAX);
        variants.push(VariantView { index, name, status, steps_total, steps_passed });
    }
    let (services, steps): (Vec<_>, Vec<_>) = r.steps.into_iter().partition(StepRow::is_service);
    let view = |s: StepRow| step(s, &now);
    BuildReport {
        commit: r.build.commit_sha.clone(),
        git_ref: r.build.git_ref.clone(),
        event: r.event,
        trigger: r.build.trigger.clone(),
        status: r.build.status.as_str().to_string(),
        pipeline: r.pipeline,
        pipeline_errors: r
            .pipeline_errors
            .into_iter()
            .map(|e| PipelineErrorView {
                line: i64::from(e.line),
                column: i64::from(e.column),
                field: e.field,
                message: e.message,
            })
            .collect(),
        queued_ms: r.build.queued_ms,
        duration_ms: r.build.duration_ms,
        steps: steps.into_iter().map(view).collect(),
        services: services.into_iter().map(view).collect(),
        variants,
        build: convert::build(r.build),
    }
}

fn step(s: StepRow, now: &str) -> BuildStepView {
    let end = s.finished_at.as_deref().or(if s.status == "running" { Some(now) } else { None });
    BuildStepView {
        duration_ms: duration_ms(s.started_at.as_deref(), end),
        variant: s.variant,
        variant_name: s.variant_name,
        name: s.name,
        kind: s.kind,
        status: s.status,
        exit_code: s.exit_code,
        oom: s.oom,
        ignored: s.ignored,
        depends_on: s.depends_on,
        error: s.error,
        line: s.line,
        started_at: s.started_at,
        finished_at: s.finished_at,
        healthy_ms: s.healthy_ms,
    }
}
