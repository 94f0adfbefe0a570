//! The service's deployment history with its Rollback buttons.

use leptos::prelude::*;

use super::{
    history::status_cell,
    paged::{Fetch, Paged},
};
use crate::{
    api::deploys::deployment_rows,
    components::{
        format::{duration_opt, short_commit, short_image, short_time},
        html,
    },
    wire::DeploymentRow,
};

/// Pages of the service's deployments, newest first.
pub fn fetch_deployments(service_id: i64) -> Fetch<DeploymentRow> {
    std::sync::Arc::new(move |before| Box::pin(deployment_rows(service_id, before)))
}

#[component]
pub fn DeploymentsTable(
    paged: Paged<DeploymentRow>,
    /// Whether the caller may roll back (deployer).
    deployer: bool,
    on_rollback: Callback<i64>,
) -> impl IntoView {
    let items = paged.items;
    view! {
        <div class="table-wrap">
            <table id="deployments">
                {deployments_head()}
                <DeploymentRows items deployer on_rollback />
            </table>
        </div>
        {move || (items.with(Vec::is_empty) && paged.error.with(Option::is_none)).then(|| view! { <p class="muted">"Nothing deployed yet."</p> }.into_any())}
        {paged.footer("deployments-more")}
    }
    .into_any()
}

/// One deployment's row (`tr[data-deployment-id]`), written as markup.
/// Its Rollback button (`button.rollback`, deployers, deployments that
/// served) is handled by the table body's click listener.
fn deployment_line(out: &mut String, d: &DeploymentRow, deployer: bool) {
    use std::fmt::Write;
    let id = d.id;
    let _ = write!(out, "<tr data-deployment-id=\"{id}\"><td><a href=\"/deployments/{id}\">#{id}</a>");
    if let Some(of) = d.rollback_of {
        let _ = write!(out, " (rollback to #{of})");
    }
    out.push_str("</td>");
    status_cell(out, &d.status);
    match (d.build_id, d.build_number) {
        (Some(b), Some(n)) => {
            let _ = write!(out, "<td><a href=\"/builds/{b}\">#{n}</a></td>");
        }
        _ => out.push_str("<td>—</td>"),
    }
    out.push_str("<td class=\"mono\" title=\"");
    html::attr(out, &d.image_id);
    out.push_str("\">");
    html::text(out, &short_image(&d.image_id));
    out.push_str("</td><td class=\"mono\"");
    if let Some(sha) = &d.commit_sha {
        out.push_str(" title=\"");
        html::attr(out, sha);
        out.push('"');
    }
    out.push('>');
    html::text(out, &short_commit(d.commit_sha.as_deref()));
    out.push_str("</td><td class=\"reason\">");
    html::text(out, d.reason.as_deref().unwrap_or_default());
    out.push_str("</td><td>");
    html::text(out, d.actor.as_deref().unwrap_or("—"));
    out.push_str("</td><td class=\"time\" title=\"");
    html::attr(out, &d.created_at);
    out.push_str("\">");
    html::text(out, &short_time(&d.created_at));
    let _ = write!(out, "</td><td>{}</td><td class=\"row-actions\">", duration_opt(d.duration_ms));
    if let Some(e) = &d.error {
        out.push_str("<details class=\"problem\"><summary>Why it failed</summary><pre>");
        html::text(out, e);
        out.push('\n');
        html::text(out, d.log_tail.as_deref().unwrap_or_default());
        out.push_str("</pre></details>");
    }
    if deployer && d.can_roll_back_to() {
        out.push_str("<button type=\"button\" class=\"rollback secondary\">Roll back to this</button>");
    }
    out.push_str("</td></tr>");
}

/// The deployment whose Rollback button was clicked, if one was.
#[cfg(feature = "hydrate")]
fn rollback_clicked(ev: &leptos::ev::MouseEvent) -> Option<i64> {
    use wasm_bindgen::JsCast;
    let target = ev.target()?.dyn_into::<leptos::web_sys::Element>().ok()?;
    let row = target.closest("button.rollback").ok()??.closest("tr[data-deployment-id]").ok()??;
    row.get_attribute("data-deployment-id")?.parse().ok()
}

#[cfg(not(feature = "hydrate"))]
fn rollback_clicked(_: &leptos::ev::MouseEvent) -> Option<i64> {
    None
}

fn deployments_head() -> AnyView {
    view! {
        <thead>
            <tr>
                <th scope="col">"Deployment"</th>
                <th scope="col">"Status"</th>
                <th scope="col">"Build"</th>
                <th scope="col">"Image"</th>
                <th scope="col">"Commit"</th>
                <th scope="col">"Reason"</th>
                <th scope="col">"By"</th>
                <th scope="col">"Started"</th>
                <th scope="col">"Took"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr>
        </thead>
    }
    .into_any()
}

#[component]
fn DeploymentRows(
    items: RwSignal<Vec<DeploymentRow>>,
    deployer: bool,
    on_rollback: Callback<i64>,
) -> impl IntoView {
    let rows = move || {
        items.with(|items| {
            let mut out = String::with_capacity(items.len() * 600);
            for d in items {
                deployment_line(&mut out, d, deployer);
            }
            out
        })
    };
    let click = move |ev: leptos::ev::MouseEvent| {
        if let Some(id) = rollback_clicked(&ev) {
            on_rollback.run(id);
        }
    };
    view! { <tbody on:click=click inner_html=rows></tbody> }.into_any()
}
