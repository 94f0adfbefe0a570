//! The build page's "Pipeline" section: the run's steps (one tab per matrix
//! variant when there are several) with status, duration and dependencies,
//! its services with their health, a progress bar of finished steps and the
//! pipeline file's refusals. A click on a step filters the log to its lines.
//!
//! The section has no per-element handlers: it is written as one markup
//! string on the server (`components::html`, every value escaped; the
//! browser receives the string, not the report) and its buttons are
//! handled by one click listener, as the service page's histories are. The
//! browser only marks the chosen step and tab in that string ([`patch`]). The
//! variant tabs are radio inputs with labels and need no handler at all: CSS
//! shows the panel after the checked one. A re-render (the report is re-read
//! every second while the run is active) keeps the tab the reader chose: it
//! is read back from the DOM first.

use std::fmt::Write;

use leptos::prelude::*;

use crate::{
    components::{badge_class, format::duration_opt, html},
    wire::{BuildPoll, BuildReport, BuildStepView},
};

#[component]
pub fn Pipeline(markup: RwSignal<Option<String>>, filter: RwSignal<Option<String>>) -> impl IntoView {
    let markup = move || {
        filter.with(|f| markup.with(|m| patch(m.as_deref().unwrap_or_default(), f.as_deref(), shown_tab())))
    };
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

/// The variant tab the reader has open (by click or keyboard), if any.
#[cfg(feature = "hydrate")]
fn shown_tab() -> Option<i64> {
    let checked = document().query_selector("#pipeline input.variant-radio:checked").ok()??;
    checked.get_attribute("value")?.parse().ok()
}

#[cfg(not(feature = "hydrate"))]
fn shown_tab() -> Option<i64> {
    None
}

/// What the build page reads of `r`: the build, and the Pipeline section
/// when the run has a pipeline file (or a refused one).
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub fn poll(r: BuildReport) -> BuildPoll {
    let shown = r.pipeline.as_deref().is_some_and(|p| p != "implicit") || !r.pipeline_errors.is_empty();
    let pipeline = shown.then(|| body(&r, None, None));
    BuildPoll { build: r.build, pipeline }
}

/// The server's markup (no step chosen, the first tab open) with step
/// `chosen` pressed, "All steps" enabled while one is, and tab `tab` open.
pub fn patch(markup: &str, chosen: Option<&str>, tab: Option<i64>) -> String {
    let mut out = markup.to_string();
    if let Some(step) = chosen {
        out = out.replacen("class=\"button-secondary\" disabled>", "class=\"button-secondary\">", 1);
        let mut needle = String::from("data-step=\"");
        html::attr(&mut needle, step);
        needle.push('"');
        let mut from = 0;
        while let Some(at) = out[from..].find(&needle).map(|i| from + i) {
            let Some(p) = out[at..].find("aria-pressed=\"false\"").map(|i| at + i) else { break };
            out.replace_range(p..p + "aria-pressed=\"false\"".len(), "aria-pressed=\"true\"");
            from = p;
        }
    }
    if let Some(t) = tab {
        let input = format!("id=\"variant-tab-{t}\" value=\"{t}\">");
        if out.contains(&input) {
            out = out.replacen(" checked>", ">", 1).replacen(
                &input,
                &format!("id=\"variant-tab-{t}\" value=\"{t}\" checked>"),
                1,
            );
        }
    }
    out
}

/// The section's markup for `chosen` (the step the log shows, if any), with
/// variant `tab` open (the first variant when `None` or unknown).
pub fn body(r: &BuildReport, chosen: Option<&str>, tab: Option<i64>) -> String {
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
    if let [v] = r.variants.as_slice() {
        variant_steps(&mut out, r, v.index, chosen);
    } else if let Some(first) = r.variants.first() {
        let open = tab.filter(|t| r.variants.iter().any(|v| v.index == *t)).unwrap_or(first.index);
        out.push_str("<div id=\"variant-tabs\">");
        for v in &r.variants {
            let (i, checked) = (v.index, if v.index == open { " checked" } else { "" });
            let _ = write!(
                out,
                "<input type=\"radio\" name=\"variant-tab\" class=\"variant-radio visually-hidden\" \
                 id=\"variant-tab-{i}\" value=\"{i}\"{checked}>\
                 <label for=\"variant-tab-{i}\" class=\"variant-tab\" data-variant=\"{i}\">"
            );
            html::text(&mut out, &v.name);
            badge(&mut out, &v.status);
            let _ = write!(out, " {}/{} passed</label>", v.steps_passed, v.steps_total);
            variant_steps(&mut out, r, i, chosen);
        }
        out.push_str("</div>");
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

/// One variant's panel: `.pipeline-variant` with its steps.
fn variant_steps(out: &mut String, r: &BuildReport, variant: i64, chosen: Option<&str>) {
    let _ = write!(
        out,
        "<div class=\"pipeline-variant\" data-variant=\"{variant}\"><ol class=\"pipeline-steps\">"
    );
    for s in r.steps.iter().filter(|s| s.variant == variant) {
        step(out, s, chosen);
    }
    out.push_str("</ol></div>");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::VariantView;

    fn step(variant: i64, name: &str, status: &str) -> BuildStepView {
        BuildStepView {
            variant,
            variant_name: format!("v{variant}"),
            name: name.into(),
            kind: "commands".into(),
            status: status.into(),
            exit_code: None,
            oom: false,
            ignored: false,
            depends_on: Vec::new(),
            error: None,
            line: None,
            started_at: None,
            finished_at: None,
            duration_ms: Some(1200),
            healthy_ms: None,
        }
    }

    fn report(variants: &[&str]) -> BuildReport {
        let build = leptos::serde_json::from_str(
            r#"{"id":1,"service_id":1,"number":1,"job_id":null,"commit_sha":null,"git_ref":"main",
            "trigger":"manual","actor":null,"status":"running","image_id":null,"tags":[],"phase":null,
            "progress":0,"attempt":1,"error":null,"created_at":"","started_at":null,"finished_at":null,
            "queued_ms":null,"duration_ms":null,"image_removed":false}"#,
        )
        .expect("a build");
        let mut steps = Vec::new();
        for i in 0..variants.len() as i64 {
            steps.push(step(i, "test", "success"));
            steps.push(step(i, "lint", "running"));
        }
        BuildReport {
            build,
            commit: None,
            git_ref: "main".into(),
            event: None,
            trigger: "manual".into(),
            status: "running".into(),
            pipeline: Some(".slipway.yml".into()),
            pipeline_errors: Vec::new(),
            queued_ms: None,
            duration_ms: None,
            steps,
            services: Vec::new(),
            variants: variants
                .iter()
                .enumerate()
                .map(|(i, name)| VariantView {
                    index: i as i64,
                    name: name.to_string(),
                    status: "running".into(),
                    steps_total: 2,
                    steps_passed: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn one_variant_has_no_tabs() {
        let html = body(&report(&["default"]), None, None);
        assert!(!html.contains("variant-tab"), "{html}");
        assert_eq!(html.matches("<li class=\"step\"").count(), 2);
        assert!(html.contains("<div class=\"pipeline-variant\" data-variant=\"0\">"));
    }

    #[test]
    fn several_variants_are_tabs_and_the_chosen_one_stays_open() {
        let r = report(&["GO=1.22", "GO=<1.23>"]);
        let html = body(&r, None, None);
        assert_eq!(html.matches("<input type=\"radio\" name=\"variant-tab\"").count(), 2);
        assert_eq!(html.matches(" checked>").count(), 1);
        assert!(html.contains("id=\"variant-tab-0\" value=\"0\" checked>"), "{html}");
        assert!(html.contains("GO=&lt;1.23&gt; <span"), "names escaped: {html}");
        assert!(html.contains(" 1/2 passed</label>"));
        // Each panel follows its label, so CSS can show the checked one's.
        assert!(html.contains("passed</label><div class=\"pipeline-variant\" data-variant=\"1\">"));
        let html = body(&r, Some("lint"), Some(1));
        assert!(html.contains("id=\"variant-tab-1\" value=\"1\" checked>"), "{html}");
        assert_eq!(html.matches(" checked>").count(), 1);
        assert_eq!(html.matches("aria-pressed=\"true\"").count(), 2, "lint in both variants");
        let html = body(&r, None, Some(7));
        assert!(html.contains("id=\"variant-tab-0\" value=\"0\" checked>"), "unknown tab: the first");
    }

    #[test]
    fn the_browser_marks_the_chosen_step_and_tab_in_the_servers_markup() {
        let r = report(&["GO=1.22", "GO=1.23"]);
        let served = body(&r, None, None);
        assert_eq!(patch(&served, None, None), served);
        assert_eq!(patch(&served, Some("lint"), Some(1)), body(&r, Some("lint"), Some(1)));
        assert_eq!(patch(&served, Some("test"), None), body(&r, Some("test"), None));
        assert_eq!(patch(&served, Some("lin"), None).matches("aria-pressed=\"true\"").count(), 0);
        assert_eq!(patch(&served, None, Some(9)), served, "unknown tab");
        let poll = poll(r.clone());
        assert_eq!(poll.pipeline.as_deref(), Some(served.as_str()));
        let mut implicit = r;
        implicit.pipeline = Some("implicit".into());
        assert_eq!(poll_of(implicit), None);
    }

    fn poll_of(r: BuildReport) -> Option<String> {
        poll(r).pipeline
    }
}
