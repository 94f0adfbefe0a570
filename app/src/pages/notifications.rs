//! `/projects/:id/notifications`: where a project's build and deploy events
//! are sent (generic JSON webhook or Slack-compatible). Everyone signed in
//! sees the targets with masked URLs and each target's newest deliveries;
//! deployers send a test; admins add and remove targets.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::{
    api::integrations::{
        create_notification_target, delete_notification_target, notifications_page, send_test_notification,
    },
    components::{
        error_text, error_view,
        form::{FieldMessage, FormErrors},
        format::short_time,
        loading, require_user, resource, use_session, Task,
    },
    wire::{
        Caller, NewNotificationTarget, NotificationDeliveryView, NotificationTargetView,
        NotificationsPageView, Role,
    },
};

const EVENTS: [&str; 5] =
    ["build.succeeded", "build.failed", "deploy.succeeded", "deploy.failed", "deploy.rolled_back"];
/// Deliveries listed per target (the server sends at most this many).
const SHOWN: usize = 10;

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let session = use_session();
    let params = use_params_map();
    let project =
        Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let page = resource(move || project.get(), notifications_page);
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match page.await {
                    Err(e) => error_view(e),
                    Ok(data) => view! { <Targets data caller /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Targets(data: NotificationsPageView, caller: Caller) -> impl IntoView {
    let NotificationsPageView { project_id, project_name, targets: list, deliveries: sent } = data;
    let targets = RwSignal::new(list);
    let deliveries = RwSignal::new(sent);
    let error = RwSignal::new(None::<String>);
    let admin = caller.may(Role::Admin);
    let deployer = caller.may(Role::Deployer);
    let (remove, test) = (Task::new(), Task::new());
    let on_remove = move |id: i64| {
        remove.run(delete_notification_target(id), move |answer| match answer {
            Ok(()) => targets.update(|t| t.retain(|t| t.id != id)),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    let on_test = move |id: i64| {
        error.set(None);
        test.run(send_test_notification(id), move |answer| match answer {
            Ok(d) => deliveries.update(|all| all.insert(0, d)),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <div class="page-head">
            <h1 id="notify-title">{format!("Notifications — {project_name}")}</h1>
            <a id="notify-project-link" href=format!("/projects/{project_id}")>{format!("Back to {project_name}")}</a>
        </div>
        {admin.then(|| view! { <NewTargetForm project=project_id targets /> }.into_any())}
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
                        {move || targets.get().into_iter().map(|t| {
                            let id = t.id;
                            view! {
                                <tr data-target-id=id>
                                    <td>{t.name}</td>
                                    <td>{t.kind}</td>
                                    <td><code>{t.url_masked}</code></td>
                                    <td>{t.events.join(", ")}</td>
                                    <td>{short_time(&t.created_at)}</td>
                                    <td class="row-actions">
                                        {deployer.then(|| view! {
                                            <button
                                                class="small secondary send-test"
                                                disabled=move || test.pending()
                                                on:click=move |_| on_test(id)
                                            >
                                                "Send test"
                                            </button>
                                        }.into_any())}
                                        {admin.then(|| view! {
                                            <button class="small danger" on:click=move |_| on_remove(id)>"Remove"</button>
                                        }.into_any())}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        {move || targets.get().into_iter().map(|t| {
            let mine: Vec<NotificationDeliveryView> = deliveries.with(|all| {
                all.iter().filter(|d| d.target_id == t.id).take(SHOWN).cloned().collect()
            });
            view! { <Deliveries target=t list=mine /> }
        }).collect_view()}
    }
    .into_any()
}

/// A target's newest deliveries: `section.target-deliveries[data-target-id]`.
#[component]
fn Deliveries(target: NotificationTargetView, list: Vec<NotificationDeliveryView>) -> impl IntoView {
    let body = if list.is_empty() {
        view! { <p class="empty-state">"No deliveries yet."</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="deliveries">
                    <thead>
                        <tr>
                            <th>"When"</th>
                            <th>"Event"</th>
                            <th>"Attempt"</th>
                            <th>"Result"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {list.into_iter().map(|d| {
                            let class = if d.ok { "result ok" } else { "result error" };
                            view! {
                                <tr data-delivery-id=d.id>
                                    <td>{short_time(&d.at)}</td>
                                    <td class="event">{d.event.clone()}</td>
                                    <td>{d.attempt}</td>
                                    <td class=class>{d.result()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="card target-deliveries" data-target-id=target.id>
            <h2>{format!("Recent deliveries: {}", target.name)}</h2>
            {body}
        </section>
    }
    .into_any()
}

/// The fields of the new-target form.
const TARGET_FIELDS: &[&str] = &["name", "kind", "url", "events"];

#[component]
fn NewTargetForm(project: i64, targets: RwSignal<Vec<NotificationTargetView>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("webhook".to_string());
    let url = RwSignal::new(String::new());
    let chosen = RwSignal::new(vec![true; EVENTS.len()]);
    let create = Task::new();
    let errors = FormErrors::new(TARGET_FIELDS);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
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
            }
            Err(e) => errors.show(&e),
        });
    };
    view! {
        <section class="card narrow">
            <h2>"Add a target"</h2>
            <form id="notify-form" on:submit=on_submit novalidate>
                <div class="field">
                    <label for="notify-name">"Name"</label>
                    <input
                        id="notify-name"
                        maxlength="60"
                        aria-invalid=errors.invalid("name")
                        aria-describedby=errors.described("name", "notify-name")
                        bind:value=name
                    />
                    <FieldMessage errors field="name" input="notify-name" />
                </div>
                <div class="field">
                    <label for="notify-kind">"Kind"</label>
                    <select id="notify-kind" aria-invalid=errors.invalid("kind") bind:value=kind>
                        <option value="webhook">"JSON webhook"</option>
                        <option value="slack">"Slack-compatible"</option>
                    </select>
                    <FieldMessage errors field="kind" input="notify-kind" />
                </div>
                <div class="field">
                    <label for="notify-url">"URL (kept secret)"</label>
                    <input
                        id="notify-url"
                        type="url"
                        aria-invalid=errors.invalid("url")
                        aria-describedby=errors.described("url", "notify-url")
                        bind:value=url
                    />
                    <FieldMessage errors field="url" input="notify-url" />
                </div>
                <fieldset class="field" aria-invalid=errors.invalid("events")>
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
                    <FieldMessage errors field="events" input="notify-events" />
                </fieldset>
                {move || errors.general().map(|e| view! { <p id="notify-form-error" class="error" role="alert">{e}</p> }.into_any())}
                <button id="notify-add" type="submit" disabled=move || create.pending()>"Add target"</button>
            </form>
        </section>
    }
}
