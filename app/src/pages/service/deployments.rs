//! The service's deployment history with its Rollback buttons.

use leptos::prelude::*;

use super::paged::{Fetch, Paged};
use crate::{
    api::deploys::deployment_rows,
    components::{
        format::{duration_opt, short_commit, short_image, short_time},
        StatusBadge,
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

#[component]
fn DeploymentLine(d: DeploymentRow, deployer: bool, on_rollback: Callback<i64>) -> impl IntoView {
    let id = d.id;
    let can_roll_back = deployer && d.can_roll_back_to();
    let build = match (d.build_id, d.build_number) {
        (Some(b), Some(n)) => view! { <a href=format!("/builds/{b}")>{format!("#{n}")}</a> }.into_any(),
        _ => "—".into_any(),
    };
    let rollback_note = d.rollback_of.map(|of| format!(" (rollback to #{of})")).unwrap_or_default();
    let problem = d.error.clone().map(|e| {
        let tail = d.log_tail.clone().unwrap_or_default();
        view! {
            <details class="problem">
                <summary>"Why it failed"</summary>
                <pre>{e} "\n" {tail}</pre>
            </details>
        }
    });
    view! {
        <tr data-deployment-id=id.to_string()>
            <td><a href=format!("/deployments/{id}")>{format!("#{id}")}</a>{rollback_note}</td>
            <td class="status"><StatusBadge status=d.status.clone() /></td>
            <td>{build}</td>
            <td class="mono" title=d.image_id.clone()>{short_image(&d.image_id)}</td>
            <td class="mono" title=d.commit_sha.clone()>{short_commit(d.commit_sha.as_deref())}</td>
            <td class="reason">{d.reason.clone().unwrap_or_default()}</td>
            <td>{d.actor.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="time" title=d.created_at.clone()>{short_time(&d.created_at)}</td>
            <td>{duration_opt(d.duration_ms)}</td>
            <td class="row-actions">
                {problem}
                {can_roll_back.then(|| view! {
                    <button type="button" class="rollback secondary" on:click=move |_| on_rollback.run(id)>
                        "Roll back to this"
                    </button>
                }.into_any())}
            </td>
        </tr>
    }
    .into_any()
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
    view! {
        <tbody>
            {move || items.get().into_iter().map(|d| view! {
                <DeploymentLine d deployer on_rollback />
            }).collect_view()}
        </tbody>
    }
    .into_any()
}
