//! `/admin/audit`: the audit log (admins), filtered by actor, action and
//! source, newest first, with "More" paging.

use leptos::prelude::*;

use crate::{
    api::integrations::list_audit,
    components::{
        error_text, error_view, format::short_time, loading, require_user, resource, use_session, Task,
    },
    wire::{AuditEventView, AuditQuery},
};

const PAGE: u32 = 50;

#[component]
pub fn AuditPage() -> impl IntoView {
    let session = use_session();
    // The first page comes with the HTML; filters and "More" fetch later.
    let first = resource(|| (), |_| list_audit(query(String::new(), String::new(), String::new(), None)));
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                if let Some(prompt) = require_user(&session.caller().await) {
                    return prompt;
                }
                match first.await {
                    Err(e) => error_view(e),
                    Ok(page) => view! { <Audit page /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

fn query(actor: String, action: String, source: String, before: Option<i64>) -> AuditQuery {
    let some = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    AuditQuery { actor: some(actor), action: some(action), source: some(source), before, limit: Some(PAGE) }
}

#[component]
fn Audit(page: Vec<AuditEventView>) -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let source = RwSignal::new(String::new());
    let more = RwSignal::new(page.len() as u32 == PAGE);
    let events = RwSignal::new(page);
    let error = RwSignal::new(None::<String>);
    let fetch = Task::new();
    // `true`: append the next page; `false`: a new search.
    let load = move |append: bool| {
        let before = if append { events.with_untracked(|e| e.last().map(|e| e.id)) } else { None };
        let q = query(actor.get_untracked(), action.get_untracked(), source.get_untracked(), before);
        fetch.run(list_audit(q), move |answer| match answer {
            Ok(page) => {
                more.set(page.len() as u32 == PAGE);
                events.update(|e| {
                    if !append {
                        e.clear();
                    }
                    e.extend(page);
                });
                error.set(None);
            }
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        load(false);
    };
    view! {
        <div class="page-head">
            <h1>"Audit log"</h1>
        </div>
        <section class="card">
            <form id="audit-filters" class="inline-form" on:submit=on_submit>
                <div class="field">
                    <label for="audit-actor">"Actor"</label>
                    <input id="audit-actor" bind:value=actor placeholder="user name" />
                </div>
                <div class="field">
                    <label for="audit-action">"Action"</label>
                    <input id="audit-action" bind:value=action placeholder="e.g. login or build" />
                </div>
                <div class="field">
                    <label for="audit-source">"Source"</label>
                    <select id="audit-source" bind:value=source>
                        <option value="">"any"</option>
                        <option value="dashboard">"dashboard"</option>
                        <option value="api">"API"</option>
                        <option value="webhook">"webhook"</option>
                        <option value="system">"system"</option>
                    </select>
                </div>
                <button id="audit-search" type="submit">"Filter"</button>
            </form>
            {move || error.get().map(|e| view! { <p id="audit-error" class="error" role="alert">{e}</p> }.into_any())}
            <div class="table-wrap" data-empty="No audit events match these filters.">
                <table id="audit">
                    <thead>
                        <tr>
                            <th>"When"</th>
                            <th>"Actor"</th>
                            <th>"Source"</th>
                            <th>"Action"</th>
                            <th>"Target"</th>
                            <th>"Detail"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || events.get().into_iter().map(|e| view! {
                            <tr data-audit-id=e.id>
                                <td>{short_time(&e.at)}</td>
                                <td>{e.actor}</td>
                                <td>{e.source}</td>
                                <td><code>{e.action}</code></td>
                                <td>{e.target.unwrap_or_default()}</td>
                                <td>{e.detail.unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <Show when=move || more.get()>
                <button id="audit-more" class="secondary" on:click=move |_| load(true)>
                    "More"
                </button>
            </Show>
        </section>
    }
    .into_any()
}
