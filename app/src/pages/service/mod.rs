//! The service page: actions, settings, build chart, build and deployment
//! history, rollback dialog. Everything is server-rendered with its data.

mod actions;
mod chart;
mod container_log;
mod delete;
mod deployments;
mod env_editor;
mod fields;
mod history;
mod paged;
mod rollback;
mod runtime;
pub mod settings_form;
mod volumes;
pub mod webhooks;

pub use actions::deploy_error as deploy_error_text;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use paged::Paged;

use crate::{
    api::services::{service_page, update_service},
    components::{
        copy::copy_line_view, deploys, error_text, error_view, live, loading, require_user, resource,
        status_label, use_session, Task,
    },
    error::AppError,
    wire::{
        BuildPoint, BuildRow, Caller, DeploymentRow, DeploymentView, Role, ServiceDetail, ServicePageView,
    },
};

/// The `:id` route parameter as a number.
pub fn id_param() -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| params.read().get("id").and_then(|s| s.parse::<i64>().ok()))
}

/// A page per route id: `page(id)` is built afresh, in the browser, when a
/// client-side move goes to another id of the same route. Its body can then
/// be a plain `Suspend` (no `move ||` around it), which server rendering
/// resolves once. On the server the page is built directly, not inside a
/// closure: server rendering calls a reactive closure twice (once to start
/// its resources, once to render), which built the page twice per request.
/// A closure renders no markers of its own, so the browser's closure
/// hydrates the server's HTML.
pub fn per_route_id<V>(page: impl Fn(Option<i64>) -> V + Send + Sync + 'static) -> AnyView
where
    V: IntoView + 'static,
{
    build_per_id(id_param(), page)
}

#[cfg(feature = "ssr")]
fn build_per_id<V: IntoView + 'static>(id: Memo<Option<i64>>, page: impl Fn(Option<i64>) -> V) -> AnyView {
    page(id.get_untracked()).into_any()
}

#[cfg(not(feature = "ssr"))]
fn build_per_id<V: IntoView + 'static>(
    id: Memo<Option<i64>>,
    page: impl Fn(Option<i64>) -> V + Send + Sync + 'static,
) -> AnyView {
    (move || page(id.get())).into_any()
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
    per_route_id(|id| view! { <ServiceLoad id /> })
}

#[component]
fn ServiceLoad(id: Option<i64>) -> impl IntoView {
    let session = use_session();
    let page = resource(move || id, |id| with_id(id, service_page));
    view! {
        <Suspense fallback=loading>
            {Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match page.await {
                    Err(e) => error_view(e),
                    Ok(page) => view! { <ServiceBody caller page /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn ServiceBody(caller: Caller, page: ServicePageView) -> impl IntoView {
    let ServicePageView { detail, chart, builds, deployments, deliveries, url, curl } = page;
    let deployer = caller.may(Role::Deployer);
    let admin = caller.may(Role::Admin);
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
    let refresh = Refresh {
        service_id,
        chart: RwSignal::new(chart),
        builds: Paged::new(builds, history::fetch_builds(service_id)),
        deployments: Paged::new(deployments, deployments::fetch_deployments(service_id)),
        notice,
        failed: RwSignal::new(None),
        task: Task::new(),
    };
    let Refresh { chart, builds, deployments, failed, .. } = refresh;
    // "Deploy latest build" right after a rollback asks first.
    let question = Callback::new(move |()| {
        let live = deployments.items.with_untracked(|d| {
            d.iter().find(|d| d.status == "live").map(|d| deploys::Live {
                id: d.id,
                rollback_of: d.rollback_of,
                build_number: d.build_number,
            })
        });
        let newest =
            chart.with_untracked(|c| c.iter().filter(|b| b.status == "succeeded").map(|b| b.number).max());
        deploys::redeploy_question(live, newest)
    });
    let watch = Callback::new(move |d: DeploymentView| {
        refresh.run();
        leptos::task::spawn_local(follow_deployment(d.id, refresh));
    });
    let on_rollback = Callback::new(move |id: i64| rollback.open(id));
    let project_link = format!("/projects/{}", detail.project_id);
    view! {
        <div class="page-head">
            <p class="crumbs"><a href=project_link>{detail.project.clone()}</a>" /"</p>
            <h1>{move || title.get()}</h1>
            <p class="muted reach">
                "Answers on "
                <a id="service-url" class="mono" href=url.clone() target="_blank" rel="noopener">{url.clone()}</a>
            </p>
            {curl.map(|curl| view! {
                <p class="muted reach">"From this machine: " {copy_line_view("service-curl", curl)}</p>
            }.into_any())}
        </div>
        {deployer.then(|| view! {
            <section class="card" aria-labelledby="actions-title">
                <h2 id="actions-title">"Build and deploy"</h2>
                <actions::ActionsPanel service_id notice on_deployed=watch question />
            </section>
        }.into_any())}
        {move || notice.get().map(|n| {
            // Red when it is the failure `follow_deployment` reported.
            let class = if failed.with(|f| f.as_ref() == Some(&n)) { "notice notice-bad" } else { "notice" };
            view! { <p id="action-message" class=class role="status">{n}</p> }.into_any()
        })}
        <RuntimeTabs service_id deployer />
        <volumes::VolumesSection service_id admin />
        <section class="card" aria-labelledby="chart-title">
            <h2 id="chart-title">"Build durations"</h2>
            {live(move || view! { <chart::BuildChart builds=chart.get() /> })}
        </section>
        <section class="card" aria-labelledby="builds-title">
            <h2 id="builds-title">"Builds"</h2>
            <history::BuildsTable paged=builds />
        </section>
        <section class="card" aria-labelledby="deployments-title">
            <h2 id="deployments-title">"Deployments"</h2>
            <deployments::DeploymentsTable paged=deployments deployer on_rollback />
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
        <webhooks::WebhookSection owner=webhooks::HookOwner::Service(service_id) caller deliveries />
        {deployer.then(|| view! { <delete::DeleteService service_id name=title.get_untracked() /> })}
        <rollback::RollbackDialog state=rollback on_done=Callback::new(move |d: DeploymentView| {
            notice.set(Some(format!("Rollback started: deployment #{} ({}).", d.id, status_label(&d.status))));
            watch.run(d);
        }) />
    }
    .into_any()
}

/// The running app: its state and usage, or its container log.
#[component]
fn RuntimeTabs(service_id: i64, deployer: bool) -> impl IntoView {
    let logs = RwSignal::new(false);
    view! {
        <section class="card" aria-labelledby="runtime-title">
            <h2 id="runtime-title">"Running app"</h2>
            <div class="tabs" role="tablist">
                <button id="tab-runtime" type="button" role="tab" aria-selected=move || (!logs.get()).to_string()
                    on:click=move |_| logs.set(false)>"State"</button>
                <button id="tab-logs" type="button" role="tab" aria-selected=move || logs.get().to_string()
                    on:click=move |_| logs.set(true)>"Logs"</button>
            </div>
            <div role="tabpanel">
                {live(move || if logs.get() {
                    view! { <container_log::LogsTab service_id /> }.into_any()
                } else {
                    view! { <runtime::RuntimePanel service_id deployer /> }.into_any()
                })}
            </div>
        </section>
    }
}

/// The page's lists (chart, both histories' first pages), read again in one
/// `service_page` call after a build or deploy.
#[derive(Clone, Copy)]
struct Refresh {
    service_id: i64,
    chart: RwSignal<Vec<BuildPoint>>,
    builds: Paged<BuildRow>,
    deployments: Paged<DeploymentRow>,
    notice: RwSignal<Option<String>>,
    /// The notice's text when it reports a failed deployment (shown red).
    failed: RwSignal<Option<String>>,
    task: Task,
}

impl Refresh {
    fn run(self) {
        self.task.run(service_page(self.service_id), move |answer| match answer {
            Ok(page) => {
                let _ = self.chart.try_set(page.chart);
                self.builds.replace(page.builds);
                self.deployments.replace(page.deployments);
            }
            Err(e) => {
                let _ = self.notice.try_set(Some(error_text(&e)));
            }
        });
    }
}

/// Follows a new deployment until it settles, then refreshes the lists and
/// says how it ended. Stops when the page is gone.
async fn follow_deployment(deployment_id: i64, refresh: Refresh) {
    let notice = refresh.notice;
    let alive = move || notice.try_get_untracked().is_some();
    if let Some(d) = deploys::settled(deployment_id, &alive).await {
        let text = deploys::outcome(&d);
        let _ = refresh.failed.try_set((d.status != "live").then(|| text.clone()));
        let _ = notice.try_set(Some(text));
        refresh.run();
    }
}
