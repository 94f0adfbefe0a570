//! The service page: actions, settings, build chart, build and deployment
//! history, rollback dialog. Everything is server-rendered with its data.

mod actions;
mod chart;
mod deployments;
mod env_editor;
mod fields;
mod history;
mod paged;
mod rollback;
pub mod settings_form;
mod webhooks;

pub use actions::deploy_error as deploy_error_text;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::{
    api::{
        builds::list_builds,
        deploys::list_deployments,
        services::{get_service, update_service},
    },
    components::{deploys, error_view, loading, require_user, resource, use_session, Res},
    error::AppError,
    wire::{BuildView, Caller, DeploymentView, HistoryPage, Role, ServiceDetail},
};

type PageRes<T> = Res<Result<HistoryPage<T>, AppError>>;

/// The `:id` route parameter as a number.
pub fn id_param() -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<i64>().ok()))
}

/// Calls `f` with a valid id, or answers "not found".
pub async fn with_id<T, Fut>(id: Option<i64>, f: impl FnOnce(i64) -> Fut) -> Result<T, AppError>
where
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    match id {
        Some(id) => f(id).await,
        None => Err(AppError::NotFound("no such page".into())),
    }
}

#[component]
pub fn ServicePage() -> impl IntoView {
    let session = use_session();
    let id = id_param();
    let service = resource(move || id.get(), |id| with_id(id, get_service));
    let chart = resource(move || id.get(), |id| with_id(id, |id| list_builds(id, None, Some(50))));
    let builds = resource(move || id.get(), |id| with_id(id, |id| list_builds(id, None, None)));
    let deployments = resource(move || id.get(), |id| with_id(id, |id| list_deployments(id, None, None)));
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match service.await {
                    Err(e) => error_view(e),
                    Ok(detail) => view! { <ServiceBody caller detail chart builds deployments /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn ServiceBody(
    caller: Caller,
    detail: ServiceDetail,
    chart: PageRes<BuildView>,
    builds: PageRes<BuildView>,
    deployments: PageRes<DeploymentView>,
) -> impl IntoView {
    let deployer = caller.may(Role::Deployer);
    let service_id = detail.id;
    let title = RwSignal::new(detail.settings.name.clone());
    let notice = RwSignal::new(None::<String>);
    let save = settings_form::Save {
        call: Callback::new(move |s: crate::wire::ServiceSettings| -> settings_form::SaveCall {
            Box::pin(update_service(service_id, s))
        }),
        done: Callback::new(move |d: ServiceDetail| title.set(d.settings.name)),
    };
    let rollback = rollback::Rollback::new();
    let refresh = move || {
        chart.refetch();
        builds.refetch();
        deployments.refetch();
    };
    let watch = Callback::new(move |d: DeploymentView| {
        refresh();
        leptos::task::spawn_local(follow_deployment(service_id, d.id, notice, deployments));
    });
    let project_link = format!("/#project-{}", detail.project_id);
    view! {
        <div class="page-head">
            <p class="crumbs"><a href=project_link>{detail.project.clone()}</a>" /"</p>
            <h1>{move || title.get()}</h1>
            <p class="muted">"Answers on " <span class="mono">{detail.host.clone()}</span></p>
        </div>
        {deployer.then(|| view! {
            <section class="card" aria-labelledby="actions-title">
                <h2 id="actions-title">"Build and deploy"</h2>
                <actions::ActionsPanel service_id notice on_deployed=watch />
            </section>
        }.into_any())}
        {move || notice.get().map(|n| view! { <p id="action-message" class="notice" role="status">{n}</p> }.into_any())}
        <section class="card" aria-labelledby="chart-title">
            <h2 id="chart-title">"Build durations"</h2>
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match chart.await {
                        Ok(p) => view! { <chart::BuildChart builds=p.items /> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card" aria-labelledby="builds-title">
            <h2 id="builds-title">"Builds"</h2>
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match builds.await {
                        Ok(first) => view! { <history::BuildsTable service_id first /> }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card" aria-labelledby="deployments-title">
            <h2 id="deployments-title">"Deployments"</h2>
            <Transition fallback=loading>
                {move || Suspend::new(async move {
                    match deployments.await {
                        Ok(first) => {
                            let on_rollback = Callback::new(move |id: i64| rollback.open(id));
                            view! { <deployments::DeploymentsTable service_id first deployer on_rollback /> }.into_any()
                        }
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section class="card" aria-labelledby="settings-title">
            <h2 id="settings-title">"Settings"</h2>
            <settings_form::ServiceForm
                initial=detail.settings
                editable=deployer
                save
                reload_on_save=true
                submit_label="Save settings"
            />
        </section>
        <webhooks::WebhookSection service_id caller />
        <rollback::RollbackDialog state=rollback on_done=Callback::new(move |d: DeploymentView| {
            notice.set(Some(format!("Rollback started: deployment #{} ({}).", d.id, d.status)));
            watch.run(d);
        }) />
    }
    .into_any()
}

/// Follows a new deployment until it settles, then refreshes the history
/// and says how it ended. Stops when the page is gone.
async fn follow_deployment(
    service_id: i64,
    deployment_id: i64,
    notice: RwSignal<Option<String>>,
    deployments: PageRes<DeploymentView>,
) {
    let alive = move || notice.try_get_untracked().is_some();
    if let Some(d) = deploys::settled(service_id, deployment_id, alive).await {
        let _ = notice.try_set(Some(deploys::outcome(&d)));
        deployments.refetch();
    }
}
