//! Build durations of the last 50 builds as an inline SVG bar chart, oldest
//! on the left. Bars are scaled to the longest build; unsuccessful builds
//! carry the class `failed`.

use leptos::prelude::*;

use crate::{
    components::{
        format::{duration, duration_opt, short_time},
        html,
    },
    wire::BuildPoint,
};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;
const TOP: f64 = 16.0;
// WIDTH and HEIGHT as SVG text (see `two_decimals`).
const WIDTH_TEXT: &str = "600";
const HEIGHT_TEXT: &str = "120";
const VIEW_BOX: &str = "0 0 600 120";

/// Whether a finished build did not succeed.
pub fn unsuccessful(status: &str) -> bool {
    matches!(status, "failed" | "cancelled" | "timed_out" | "interrupted")
}

/// `x` with two decimals, as `format!("{x:.2}")` writes the chart's
/// non-negative coordinates, without Rust's float formatting (about 20 KB of
/// the browser bundle, used nowhere else).
pub fn two_decimals(x: f64) -> String {
    let hundredths = (x.max(0.0) * 100.0).round() as u64;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Bar height for `ms` when the longest build took `max` ms.
pub fn bar_height(ms: Option<i64>, max: i64) -> f64 {
    match ms {
        Some(ms) if max > 0 => (ms.max(0) as f64 / max as f64) * (HEIGHT - TOP),
        _ => 0.0,
    }
}

#[component]
pub fn BuildChart(builds: Vec<BuildPoint>) -> impl IntoView {
    let mut builds = builds;
    builds.truncate(50);
    builds.reverse();
    let max = builds.iter().filter_map(|b| b.duration_ms).max().unwrap_or(0);
    let failed = builds.iter().filter(|b| unsuccessful(&b.status)).count();
    let label = if builds.is_empty() {
        "Build durations: no builds yet".to_string()
    } else {
        format!(
            "Build durations of the last {} builds, longest {}, {} unsuccessful",
            builds.len(),
            duration(max),
            failed
        )
    };
    let slot = WIDTH / (builds.len().max(10) as f64);
    // The axis and the bars as markup (`inner_html`): 50 bars with 5
    // attributes and a title each, no event handlers.
    let mut marks = format!(
        "<line class=\"axis\" x1=\"0\" y1=\"{HEIGHT_TEXT}\" x2=\"{WIDTH_TEXT}\" y2=\"{HEIGHT_TEXT}\"></line>"
    );
    for (i, b) in builds.iter().enumerate() {
        bar(&mut marks, b, i as f64 * slot, slot, max);
    }
    view! {
        <svg
            id="build-chart"
            class="chart"
            role="img"
            aria-label=label
            viewBox=VIEW_BOX
            preserveAspectRatio="none"
            inner_html=marks
        ></svg>
        <p class="muted chart-legend">
            {if max > 0 { format!("Tallest bar: {}. ", duration(max)) } else { String::new() }}
            <span class="legend-ok">"■ succeeded"</span>
            " "
            <span class="legend-failed">"■ unsuccessful"</span>
        </p>
    }
    .into_any()
}

/// One build's `rect.bar` (with `data-build-id` and a `title`) at `x`.
fn bar(out: &mut String, b: &BuildPoint, x: f64, slot: f64, max: i64) {
    use std::fmt::Write;
    let h = bar_height(b.duration_ms, max);
    let class = if unsuccessful(&b.status) {
        "bar failed"
    } else if matches!(b.status.as_str(), "queued" | "running") {
        "bar active"
    } else {
        "bar"
    };
    let _ = write!(
        out,
        "<rect class=\"{class}\" data-build-id=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>#{} {} · {} · ",
        b.id,
        two_decimals(x + slot * 0.1),
        two_decimals(HEIGHT - h),
        two_decimals(slot * 0.8),
        two_decimals(h),
        b.number,
        crate::components::status_label(&b.status),
        duration_opt(b.duration_ms),
    );
    html::text(out, &short_time(&b.created_at));
    out.push_str("</title></rect>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_longest_build() {
        assert_eq!(bar_height(Some(500), 1000), (HEIGHT - TOP) / 2.0);
        assert_eq!(bar_height(Some(1000), 1000), HEIGHT - TOP);
        assert_eq!(bar_height(None, 1000), 0.0);
        assert_eq!(bar_height(Some(5), 0), 0.0);
    }

    #[test]
    fn coordinates_have_two_decimals() {
        for x in [0.0, 0.004, 0.006, 1.0, 6.0, 10.126, 59.999, 104.0, 599.4] {
            assert_eq!(two_decimals(x), format!("{x:.2}"), "{x}");
        }
        assert_eq!(two_decimals(-1.0), "0.00");
        assert_eq!((WIDTH_TEXT, HEIGHT_TEXT), (WIDTH.to_string().as_str(), HEIGHT.to_string().as_str()));
        assert_eq!(VIEW_BOX, format!("0 0 {WIDTH} {HEIGHT}"));
    }

    #[test]
    fn unsuccessful_statuses() {
        assert!(unsuccessful("failed") && unsuccessful("timed_out") && unsuccessful("cancelled"));
        assert!(!unsuccessful("succeeded") && !unsuccessful("running"));
    }
}
