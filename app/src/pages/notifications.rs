//! `/projects/:id/notifications`: where a project's build and deploy events
//! are sent (generic JSON webhook or Slack-compatible). Everyone signed in
//! sees the targets with masked URLs; admins add and remove them.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::{
    api::integrations::{create_notification_target, delete_notification_target, list_notification_targets},
    components::{
        error_text, error_view, format::short_time, loading, require_user, resource, use_session, Task,
    },
    wire::{Caller, NewNotificationTarget, NotificationTargetView, Role},
};

const EVENTS: [&str; 5] =
    ["build.succeeded", "build.failed", "deploy.succeeded", "deploy.failed", "deploy.rolled_back"];

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let session = use_session();
    let params = use_params_map();
    let project =
        Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let targets = resource(move || project.get(), list_notification_targets);
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match targets.await {
                    Err(e) => error_view(e),
                    Ok(list) => view! { <Targets project=project.get_untracked() list caller /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Targets(project: i64, list: Vec<NotificationTargetView>, caller: Caller) -> impl IntoView {
    let targets = RwSignal::new(list);
    let error = RwSignal::new(None::<String>);
    let admin = caller.may(Role::Admin);
    let remove = Task::new();
    let on_remove = move |id: i64| {
        remove.run(delete_notification_target(id), move |answer| match answer {
            Ok(()) => targets.update(|t| t.retain(|t| t.id != id)),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <div class="page-head">
            <h1>"Notifications"</h1>
            <a href="/">"Back to projects"</a>
        </div>
        {admin.then(|| view! { <NewTargetForm project targets error /> }.into_any())}
        {move || error.get().map(|e| view! { <p id="notify-error" class="error" role="alert">{e}</p> }.into_any())}
        <section class="card">
            <div class="table-wrap" data-empty="No notification targets yet.">
                <table id="notification-targets">
                    <thead>
                        <tr>
                            <th>"Name"</th>
                            <th>"Kind"</th>
                            <th>"URL"</th>
                            <th>"Events"</th>
                            <th>"Added"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || targets.get().into_iter().map(|t| view! {
                            <tr data-target-id=t.id>
                                <td>{t.name}</td>
                                <td>{t.kind}</td>
                                <td><code>{t.url_masked}</code></td>
                                <td>{t.events.join(", ")}</td>
                                <td>{short_time(&t.created_at)}</td>
                                <td>
                                    {admin
                                        .then(|| {
                                            let id = t.id;
                                            view! {
                                                <button class="small danger" on:click=move |_| on_remove(id)>
                                                    "Remove"
                                                </button>
                                            }
                                            .into_any()
                                        })}
                                </td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn NewTargetForm(
    project: i64,
    targets: RwSignal<Vec<NotificationTargetView>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("webhook".to_string());
    let url = RwSignal::new(String::new());
    let chosen = RwSignal::new(vec![true; EVENTS.len()]);
    let create = Task::new();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let events = chosen.with_untracked(|c| {
            EVENTS.iter().zip(c).filter(|(_, on)| **on).map(|(e, _)| e.to_string()).collect()
        });
        let target = NewNotificationTarget {
            name: name.get_untracked(),
            kind: kind.get_untracked(),
            url: url.get_untracked(),
            events,
        };
        create.run(create_notification_target(project, target), move |answer| match answer {
            Ok(t) => {
                targets.update(|all| all.push(t));
                name.set(String::new());
                url.set(String::new());
                error.set(None);
            }
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <section class="card narrow">
            <h2>"Add a target"</h2>
            <form id="notify-form" on:submit=on_submit>
                <div class="field">
                    <label for="notify-name">"Name"</label>
                    <input id="notify-name" required maxlength="60" bind:value=name />
                </div>
                <div class="field">
                    <label for="notify-kind">"Kind"</label>
                    <select id="notify-kind" bind:value=kind>
                        <option value="webhook">"JSON webhook"</option>
                        <option value="slack">"Slack-compatible"</option>
                    </select>
                </div>
                <div class="field">
                    <label for="notify-url">"URL (kept secret)"</label>
                    <input id="notify-url" type="url" required bind:value=url />
                </div>
                <fieldset class="field">
                    <legend>"Events"</legend>
                    {EVENTS
                        .iter()
                        .enumerate()
                        .map(|(i, event)| {
                            view! {
                                <label class="check">
                                    <input
                                        type="checkbox"
                                        class="notify-event"
                                        value=*event
                                        prop:checked=move || chosen.with(|c| c[i])
                                        on:change=move |ev| chosen.update(|c| c[i] = event_target_checked(&ev))
                                    />
                                    {*event}
                                </label>
                            }
                        })
                        .collect_view()}
                </fieldset>
                <button id="notify-add" type="submit" disabled=move || create.pending()>"Add target"</button>
            </form>
        </section>
    }
}
