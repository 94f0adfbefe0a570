//! The service's build history: the first page is server-rendered, "More"
//! appends the next one (keyset pagination with `before`).

use leptos::prelude::*;

use super::paged::{Fetch, Paged};
use crate::{
    api::builds::build_rows,
    components::{
        format::{duration_opt, short_commit, short_time},
        StatusBadge,
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

#[component]
fn BuildLine(b: BuildRow) -> impl IntoView {
    let href = format!("/builds/{}", b.id);
    view! {
        <tr data-build-id=b.id.to_string()>
            <td><a href=href>{format!("#{}", b.number)}</a></td>
            <td class="status"><StatusBadge status=b.status.clone() /></td>
            <td class="ref">{b.git_ref.clone()}</td>
            <td class="commit mono" title=b.commit_sha.clone()>{short_commit(b.commit_sha.as_deref())}</td>
            <td class="trigger">{b.trigger.clone()}</td>
            <td class="actor">{b.actor.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="duration">{duration_opt(b.duration_ms)}</td>
            <td class="time" title=b.created_at.clone()>{short_time(&b.created_at)}</td>
        </tr>
    }
    .into_any()
}

fn builds_head() -> AnyView {
    view! {
        <thead>
            <tr>
                <th scope="col">"Build"</th>
                <th scope="col">"Status"</th>
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
    view! {
        <tbody>
            {move || items.get().into_iter().map(|b| view! {
                <BuildLine b />
            }).collect_view()}
        </tbody>
    }
    .into_any()
}
