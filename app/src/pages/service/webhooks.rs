//! Forge webhooks, on the service page (its own hook) and the project page
//! (the project hook, fanned out to its services): hook paths and secret
//! on request (deployers), rotate, and the recent deliveries (admins).

use leptos::prelude::*;

use crate::{
    api::integrations::{
        project_webhook_info, rotate_project_webhook_secret, rotate_webhook_secret, webhook_info,
    },
    components::{copy::copy_line_view, error_text, format::short_time, Task},
    wire::{Caller, DeliveryView, HistoryPage, Role},
};

/// Whose hook the section shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOwner {
    Service(i64),
    Project(i64),
}

/// What the section shows of either hook.
#[derive(Debug, Clone)]
struct HookInfo {
    github: String,
    gitlab: String,
    gitea: String,
    secret: String,
}

async fn hook_info(owner: HookOwner, rotate: bool) -> Result<HookInfo, crate::AppError> {
    Ok(match (owner, rotate) {
        (HookOwner::Service(id), rotate) => {
            let w = if rotate { rotate_webhook_secret(id).await? } else { webhook_info(id).await? };
            HookInfo { github: w.github, gitlab: w.gitlab, gitea: w.gitea, secret: w.secret }
        }
        (HookOwner::Project(id), rotate) => {
            let w = if rotate {
                rotate_project_webhook_secret(id).await?
            } else {
                project_webhook_info(id).await?
            };
            HookInfo { github: w.github, gitlab: w.gitlab, gitea: w.gitea, secret: w.secret }
        }
    })
}

#[component]
pub fn WebhookSection(
    owner: HookOwner,
    caller: Caller,
    /// The recent deliveries (admins; `None` for others).
    deliveries: Option<HistoryPage<DeliveryView>>,
) -> impl IntoView {
    if !caller.may(Role::Deployer) {
        return ().into_any();
    }
    let info = RwSignal::new(None::<HookInfo>);
    let error = RwSignal::new(None::<String>);
    let fetch = Task::new();
    // `true` rotates the secret, `false` only reveals it.
    let load = move |rotate: bool| {
        let call = hook_info(owner, rotate);
        fetch.run(call, move |answer| match answer {
            Ok(w) => {
                info.set(Some(w));
                error.set(None);
            }
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <section class="card" id="webhooks">
            <h2>"Webhooks"</h2>
            <p class="muted">
                "Point a GitHub, GitLab or Gitea push webhook (content type JSON) at this server with the secret below. "
                {match owner {
                    HookOwner::Service(_) => "Pushes to the service's branch build that commit.",
                    HookOwner::Project(_) => {
                        "A push builds every service of this project whose repository and branch match, \
                         from one checkout; services with identical build inputs share one image build."
                    }
                }}
            </p>
            {move || match info.get() {
                None => {
                    view! {
                        <button id="webhook-show" class="secondary" on:click=move |_| load(false)>
                            "Show webhook URLs and secret"
                        </button>
                    }
                        .into_any()
                }
                Some(w) => {
                    // The hooks' paths on this dashboard's address, as the
                    // browser reached it (the forge must reach it the same way).
                    let origin = window().location().origin().unwrap_or_default();
                    let url = |path: String| format!("{origin}{path}");
                    view! {
                        <dl class="webhook-info">
                            <dt>"GitHub"</dt>
                            <dd>{copy_line_view("webhook-github", url(w.github))}</dd>
                            <dt>"GitLab"</dt>
                            <dd>{copy_line_view("webhook-gitlab", url(w.gitlab))}</dd>
                            <dt>"Gitea"</dt>
                            <dd>{copy_line_view("webhook-gitea", url(w.gitea))}</dd>
                            <dt>"Secret"</dt>
                            <dd><code id="webhook-secret" class="secret-once">{w.secret}</code></dd>
                        </dl>
                        <button id="webhook-rotate" class="secondary" on:click=move |_| load(true)>
                            "Rotate secret"
                        </button>
                    }
                        .into_any()
                }
            }}
            {move || error.get().map(|e| view! { <p id="webhook-error" class="error" role="alert">{e}</p> }.into_any())}
            {deliveries.map(|page| view! { <Deliveries page /> }.into_any())}
        </section>
    }
    .into_any()
}

#[component]
fn Deliveries(page: HistoryPage<DeliveryView>) -> impl IntoView {
    view! {
        <h3>"Recent deliveries"</h3>
        {match page.items.is_empty() {
            true => view! { <p class="muted empty-state">"No webhook deliveries yet."</p> }.into_any(),
            false => view! { <DeliveryTable items=page.items /> }.into_any(),
        }}
    }
}

#[component]
fn DeliveryTable(items: Vec<DeliveryView>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table id="webhook-deliveries">
                <thead>
                    <tr>
                        <th>"When"</th>
                        <th>"Forge"</th>
                        <th>"Event"</th>
                        <th>"Status"</th>
                        <th>"Reason"</th>
                        <th>"Build"</th>
                    </tr>
                </thead>
                <tbody>
                    {items
                        .into_iter()
                        .map(|d| {
                            view! {
                                <tr data-delivery-id=d.id>
                                    <td>{short_time(&d.received_at)}</td>
                                    <td>{d.forge}</td>
                                    <td>{d.event.unwrap_or_default()}</td>
                                    <td class="status">{d.status}</td>
                                    <td>{d.reason}</td>
                                    <td>
                                        {d.build_id.map(|b| view! { <a href=format!("/builds/{b}")>{format!("#{b}")}</a> }.into_any())}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
