//! The service's build history: the first page is server-rendered, "More"
//! appends the next one (keyset pagination with `before`).

use leptos::prelude::*;

use super::paged::{Fetch, Paged};
use crate::{
    api::builds::build_rows,
    components::{
        badge_class,
        format::{duration_opt, short_commit, short_time},
        html, status_label,
    },
    wire::BuildRow,
};

/// Pages of the service's builds, newest first.
pub fn fetch_builds(service_id: i64) -> Fetch<BuildRow> {
    std::sync::Arc::new(move |before| Box::pin(build_rows(service_id, before)))
}

#[component]
pub fn BuildsTable(paged: Paged<BuildRow>) -> impl IntoView {
    let items = paged.items;
    view! {
        <div class="table-wrap">
            <table id="builds">
                {builds_head()}
                <BuildRows items />
            </table>
        </div>
        {move || (items.with(Vec::is_empty) && paged.error.with(Option::is_none)).then(|| view! { <p class="muted">"No builds yet."</p> }.into_any())}
        {paged.footer("builds-more")}
    }
    .into_any()
}

/// One build's row (`tr[data-build-id]`), written as markup: the table has
/// no event handlers, and links are followed by the router as any link.
/// `td.steps` says how many of the run's steps passed ("3/5 steps"); empty
/// for a run without steps.
fn build_line(out: &mut String, b: &BuildRow) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "<tr data-build-id=\"{id}\"><td><a href=\"/builds/{id}\">#{n}</a></td>",
        id = b.id,
        n = b.number
    );
    status_cell(out, &b.status);
    out.push_str("<td class=\"steps\">");
    if b.steps_total > 0 {
        let _ = write!(out, "{}/{} steps", b.steps_passed, b.steps_total);
    }
    out.push_str("</td><td class=\"ref\">");
    html::text(out, &b.git_ref);
    out.push_str("</td><td class=\"commit mono\"");
    if let Some(sha) = &b.commit_sha {
        out.push_str(" title=\"");
        html::attr(out, sha);
        out.push('"');
    }
    out.push('>');
    html::text(out, &short_commit(b.commit_sha.as_deref()));
    out.push_str("</td><td class=\"trigger\">");
    html::text(out, &b.trigger);
    out.push_str("</td><td class=\"actor\">");
    html::text(out, b.actor.as_deref().unwrap_or("—"));
    let _ = write!(
        out,
        "</td><td class=\"duration\">{}</td><td class=\"time\" title=\"",
        duration_opt(b.duration_ms)
    );
    html::attr(out, &b.created_at);
    out.push_str("\">");
    html::text(out, &short_time(&b.created_at));
    out.push_str("</td></tr>");
}

/// `td.status` holding the status badge, as [`StatusBadge`] renders it.
///
/// [`StatusBadge`]: crate::components::StatusBadge
pub fn status_cell(out: &mut String, status: &str) {
    out.push_str("<td class=\"status\"><span class=\"");
    out.push_str(badge_class(status));
    out.push_str(" \">");
    html::text(out, status_label(status));
    out.push_str("</span></td>");
}

fn builds_head() -> AnyView {
    view! {
        <thead>
            <tr>
                <th scope="col">"Build"</th>
                <th scope="col">"Status"</th>
                <th scope="col">"Steps"</th>
                <th scope="col">"Ref"</th>
                <th scope="col">"Commit"</th>
                <th scope="col">"Trigger"</th>
                <th scope="col">"By"</th>
                <th scope="col">"Duration"</th>
                <th scope="col">"Queued at"</th>
            </tr>
        </thead>
    }
    .into_any()
}

#[component]
fn BuildRows(items: RwSignal<Vec<BuildRow>>) -> impl IntoView {
    let rows = move || {
        items.with(|items| {
            let mut out = String::with_capacity(items.len() * 400);
            for b in items {
                build_line(&mut out, b);
            }
            out
        })
    };
    view! { <tbody inner_html=rows></tbody> }.into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(steps_total: i64, steps_passed: i64) -> BuildRow {
        BuildRow {
            id: 7,
            number: 3,
            status: "failed".into(),
            git_ref: "main".into(),
            commit_sha: None,
            trigger: "manual".into(),
            actor: None,
            duration_ms: None,
            created_at: "2026-12-06T08:00:00Z".into(),
            steps_total,
            steps_passed,
        }
    }

    #[test]
    fn a_row_says_how_many_steps_passed() {
        let mut out = String::new();
        build_line(&mut out, &row(5, 3));
        assert!(out.contains("<td class=\"steps\">3/5 steps</td>"), "{out}");
        let mut out = String::new();
        build_line(&mut out, &row(0, 0));
        assert!(out.contains("<td class=\"steps\"></td>"), "no steps, empty cell: {out}");
    }
}
