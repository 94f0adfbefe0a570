//! The build page's "Pipeline" section: the run's steps (grouped by matrix
//! variant when there are several) with status, duration and dependencies,
//! its services with their health, a progress bar of finished steps and the
//! pipeline file's refusals. A click on a step filters the log to its lines.
//!
//! The section has no per-element handlers: it is written as one markup
//! string (`components::html`, every value escaped) and its buttons are
//! handled by one click listener, as the service page's histories are.

use std::fmt::Write;

use leptos::prelude::*;

use crate::{
    components::{badge_class, format::duration_opt, html},
    wire::{BuildReport, BuildStepView},
};

#[component]
pub fn Pipeline(report: RwSignal<BuildReport>, filter: RwSignal<Option<String>>) -> impl IntoView {
    let markup = move || filter.with(|f| report.with(|r| body(r, f.as_deref())));
    let click = move |ev: leptos::ev::MouseEvent| {
        if let Some(choice) = clicked(&ev) {
            filter.set(choice);
        }
    };
    view! { <div on:click=click inner_html=markup></div> }.into_any()
}

/// What a click chose: `Some(Some(step))` a step, `Some(None)` every step.
#[cfg(feature = "hydrate")]
fn clicked(ev: &leptos::ev::MouseEvent) -> Option<Option<String>> {
    use wasm_bindgen::JsCast;
    let target = ev.target()?.dyn_into::<leptos::web_sys::Element>().ok()?;
    if target.closest("button#step-all").ok()?.is_some() {
        return Some(None);
    }
    let step = target.closest("button.step-name").ok()??.closest("li[data-step]").ok()??;
    Some(step.get_attribute("data-step"))
}

#[cfg(not(feature = "hydrate"))]
fn clicked(_: &leptos::ev::MouseEvent) -> Option<Option<String>> {
    None
}

/// The section's markup for `chosen` (the step the log shows, if any).
pub fn body(r: &BuildReport, chosen: Option<&str>) -> String {
    let mut out = String::with_capacity(512 + r.steps.len() * 300);
    let (finished, total) = r.progress();
    let disabled = if chosen.is_none() { " disabled" } else { "" };
    let _ = write!(
        out,
        "<div class=\"log-head\"><h2>Pipeline</h2><button type=\"button\" id=\"step-all\" \
         class=\"button-secondary\"{disabled}>All steps</button></div>\
         <progress id=\"pipeline-progress\" value=\"{finished}\" max=\"{total}\">{finished} of {total}</progress>\
         <span class=\"muted\"> {finished} of {total} steps finished</span>"
    );
    if !r.pipeline_errors.is_empty() {
        out.push_str("<p class=\"error\">");
        html::text(&mut out, r.pipeline.as_deref().unwrap_or_default());
        out.push_str(" is invalid:</p><ul id=\"pipeline-errors\">");
        for e in &r.pipeline_errors {
            let _ = write!(out, "<li>line {}, column {}: ", e.line, e.column);
            html::text(&mut out, &e.field);
            out.push_str(": ");
            html::text(&mut out, &e.message);
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    let several = r.variants.len() > 1;
    for v in &r.variants {
        let _ = write!(out, "<div class=\"pipeline-variant\" data-variant=\"{}\">", v.index);
        if several {
            out.push_str("<h3 class=\"variant-name\">");
            html::text(&mut out, &v.name);
            badge(&mut out, &v.status);
            let _ = write!(out, " {} of {} passed</h3>", v.steps_passed, v.steps_total);
        }
        out.push_str("<ol class=\"pipeline-steps\">");
        for s in r.steps.iter().filter(|s| s.variant == v.index) {
            step(&mut out, s, chosen);
        }
        out.push_str("</ol></div>");
    }
    if !r.services.is_empty() {
        out.push_str("<h3>Services</h3><ul id=\"pipeline-services\">");
        for s in &r.services {
            service(&mut out, s);
        }
        out.push_str("</ul>");
    }
    out
}

fn badge(out: &mut String, status: &str) {
    let _ = write!(out, " <span class=\"{}\">", badge_class(status));
    html::text(out, status);
    out.push_str("</span>");
}

fn step(out: &mut String, s: &BuildStepView, chosen: Option<&str>) {
    // Step names are `[A-Za-z0-9_.-]`; escaped all the same.
    out.push_str("<li class=\"step\" data-step=\"");
    html::attr(out, &s.name);
    out.push_str("\" data-status=\"");
    html::attr(out, &s.status);
    let pressed = chosen == Some(s.name.as_str());
    let _ = write!(out, "\"><button type=\"button\" class=\"step-name\" aria-pressed=\"{pressed}\">");
    html::text(out, &s.name);
    out.push_str("</button>");
    badge(out, &s.status);
    let _ = write!(out, " <span class=\"step-duration\">{}</span>", duration_opt(s.duration_ms));
    if let Some(code) = s.exit_code {
        let _ = write!(out, " <span class=\"step-exit mono\">exit {code}</span>");
    }
    if !s.depends_on.is_empty() {
        out.push_str(" <span class=\"step-deps muted\">after ");
        html::text(out, &s.depends_on.join(", "));
        out.push_str("</span>");
    }
    if s.oom {
        out.push_str(" <span class=\"muted\">out of memory</span>");
    }
    if s.ignored {
        out.push_str(" <span class=\"muted\">failure ignored</span>");
    }
    if let Some(e) = &s.error {
        out.push_str("<p class=\"step-error error\">");
        html::text(out, e);
        out.push_str("</p>");
    }
    out.push_str("</li>");
}

fn service(out: &mut String, s: &BuildStepView) {
    out.push_str("<li class=\"service\" data-service=\"");
    html::attr(out, &s.name);
    out.push_str("\" data-status=\"");
    html::attr(out, &s.status);
    out.push_str("\"><span class=\"mono\">");
    html::text(out, &s.name);
    out.push_str("</span>");
    badge(out, &s.status);
    out.push_str(" <span class=\"service-health\">");
    match (&s.error, s.healthy_ms) {
        (Some(e), _) => html::text(out, e),
        (None, Some(ms)) => out.push_str(&format!("healthy after {}", duration_opt(Some(ms)))),
        (None, None) => out.push_str("not healthy yet"),
    }
    out.push_str("</span></li>");
}
