//! The build page's "Pipeline" section: the run's steps (grouped by matrix
//! variant when there are several) with status, duration and dependencies,
//! its services with their health, a progress bar of finished steps and the
//! pipeline file's refusals. A click on a step filters the log to its lines.

use leptos::prelude::*;

use crate::{
    components::{badge_class, format::duration_opt},
    wire::{BuildReport, BuildStepView},
};

#[component]
pub fn Pipeline(report: RwSignal<BuildReport>, filter: RwSignal<Option<String>>) -> impl IntoView {
    move || report.with(|r| body(r, filter))
}

fn body(r: &BuildReport, filter: RwSignal<Option<String>>) -> AnyView {
    let (finished, total) = r.progress();
    let several = r.variants.len() > 1;
    let groups = r
        .variants
        .iter()
        .map(|v| {
            let steps: Vec<_> =
                r.steps.iter().filter(|s| s.variant == v.index).map(|s| step(s, filter)).collect();
            let head = several.then(|| {
                view! {
                    <h3 class="variant-name">
                        {v.name.clone()}" "<span class=badge_class(&v.status)>{v.status.clone()}</span>
                        {format!(" {} of {} passed", v.steps_passed, v.steps_total)}
                    </h3>
                }
            });
            view! {
                <div class="pipeline-variant" data-variant=v.index.to_string()>
                    {head}
                    <ol class="pipeline-steps">{steps}</ol>
                </div>
            }
        })
        .collect_view();
    let errors = (!r.pipeline_errors.is_empty()).then(|| {
        let items = r
            .pipeline_errors
            .iter()
            .map(|e| {
                view! {
                    <li>{format!("line {}, column {}: {}: {}", e.line, e.column, e.field, e.message)}</li>
                }
            })
            .collect_view();
        view! {
            <p class="error">{format!("{} is invalid:", r.pipeline.clone().unwrap_or_default())}</p>
            <ul id="pipeline-errors">{items}</ul>
        }
    });
    let services = (!r.services.is_empty()).then(|| {
        let items = r.services.iter().map(service).collect_view();
        view! {
            <h3>"Services"</h3>
            <ul id="pipeline-services">{items}</ul>
        }
    });
    view! {
        <div class="log-head">
            <h2>"Pipeline"</h2>
            <button
                type="button"
                id="step-all"
                class="button-secondary"
                disabled=move || filter.with(Option::is_none)
                on:click=move |_| filter.set(None)
            >
                "All steps"
            </button>
        </div>
        <progress id="pipeline-progress" value=finished.to_string() max=total.to_string()>
            {format!("{finished} of {total}")}
        </progress>
        <span class="muted">{format!(" {finished} of {total} steps finished")}</span>
        {errors}
        {groups}
        {services}
    }
    .into_any()
}

fn step(s: &BuildStepView, filter: RwSignal<Option<String>>) -> impl IntoView {
    let name = s.name.clone();
    let mine = name.clone();
    let selected = move || filter.with(|f| f.as_deref() == Some(mine.as_str()));
    let pick = name.clone();
    let attr = name.clone();
    let after = (!s.depends_on.is_empty()).then(|| format!("after {}", s.depends_on.join(", ")));
    let exit = s.exit_code.map(|c| format!("exit {c}"));
    let notes = [s.oom.then_some("out of memory"), s.ignored.then_some("failure ignored")];
    let notes: Vec<&str> = notes.into_iter().flatten().collect();
    view! {
        <li class="step" data-step=attr data-status=s.status.clone()>
            <button
                type="button"
                class="step-name"
                aria-pressed=move || selected().to_string()
                on:click=move |_| filter.set(Some(pick.clone()))
            >
                {name}
            </button>
            " "
            <span class=badge_class(&s.status)>{s.status.clone()}</span>
            " "
            <span class="step-duration">{duration_opt(s.duration_ms)}</span>
            {exit.map(|e| view! { " " <span class="step-exit mono">{e}</span> })}
            {after.map(|a| view! { " " <span class="step-deps muted">{a}</span> })}
            {(!notes.is_empty()).then(|| view! { " " <span class="muted">{notes.join(", ")}</span> })}
            {s.error.clone().map(|e| view! { <p class="step-error error">{e}</p> })}
        </li>
    }
}

fn service(s: &BuildStepView) -> impl IntoView {
    let health = match (&s.healthy_ms, &s.error) {
        (_, Some(e)) => e.clone(),
        (Some(ms), None) => format!("healthy after {}", duration_opt(Some(*ms))),
        (None, None) => "not healthy yet".into(),
    };
    view! {
        <li class="service" data-service=s.name.clone() data-status=s.status.clone()>
            <span class="mono">{s.name.clone()}</span>
            " "
            <span class=badge_class(&s.status)>{s.status.clone()}</span>
            " "
            <span class="service-health">{health}</span>
        </li>
    }
}
