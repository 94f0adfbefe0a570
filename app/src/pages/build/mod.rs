//! The build page: what was built, status and progress (re-fetched every
//! second while the build is active), the live log, cancel and deploy.

mod controls;
#[cfg(feature = "hydrate")]
mod live;
mod log;
pub(crate) mod pipeline;

use leptos::prelude::*;

use crate::{
    api::builds::{build_page, build_report},
    components::{
        badge_class, browser, error_view, loading, require_user, resource, status_label, use_session,
    },
    pages::service::{per_route_id, with_id},
    wire::{BuildDetail, BuildPageData, BuildPoll, BuildView, Caller, LogLineView, Role},
};

#[component]
pub fn BuildPage() -> impl IntoView {
    // Built once on the server (the log can be long); see `per_route_id`.
    per_route_id(|id| view! { <BuildLoad id /> })
}

#[component]
fn BuildLoad(id: Option<i64>) -> impl IntoView {
    let session = use_session();
    let page = resource(move || id, |id| with_id(id, build_page));
    view! {
        <Suspense fallback=loading>
            {Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match page.await {
                    Err(e) => error_view(e),
                    Ok(BuildPageData { detail, lines, poll }) => {
                        view! { <BuildBody caller detail lines pipeline=poll.pipeline /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn BuildBody(
    caller: Caller,
    detail: BuildDetail,
    lines: Vec<LogLineView>,
    pipeline: Option<String>,
) -> impl IntoView {
    let BuildDetail { build: initial, service, project } = detail;
    let build_id = initial.id;
    let service_id = initial.service_id;
    let was_active = initial.is_active();
    let number = initial.number;
    let build = RwSignal::new(initial);
    // The Pipeline section's markup (`None`: no pipeline file).
    let pipeline = RwSignal::new(pipeline);
    // The step whose lines the log shows (`None`: every line).
    let filter = RwSignal::new(None::<String>);
    let has_pipeline = move || pipeline.with(Option::is_some);
    // A build that ended without an image: the bar shows that, full and red.
    let failed = move || build.with(|b| !b.is_active() && b.status != "succeeded");
    // In the browser: re-fetch the build every second while it is active.
    Effect::new(move |_| {
        if build.get_untracked().is_active() {
            leptos::task::spawn_local(poll_build(build, pipeline));
        }
    });
    let refetch = Callback::new(move |()| {
        leptos::task::spawn_local(async move {
            if let Ok(p) = build_report(build_id).await {
                update(build, pipeline, p);
            }
        });
    });
    view! {
        <div class="page-head">
            <p class="crumbs">
                {project}" / "<a href=format!("/services/{service_id}")>{service}</a>
            </p>
            <h1>{format!("Build #{number}")}</h1>
        </div>
        <section class="card">
            <div class="build-state">
                <span id="build-status" class=move || build.with(|b| badge_class(&b.status))>
                    {move || build.with(|b| status_label(&b.status).to_string())}
                </span>
                <progress
                    id="build-progress"
                    class=move || if failed() { "failed" } else { "" }
                    max="100"
                    value=move || if failed() { "100".to_string() } else { build.get().progress.to_string() }
                    aria-label="Build progress"
                >
                    {move || format!("{} %", build.get().progress)}
                </progress>
                <span id="build-phase">{move || build.get().phase.unwrap_or_else(|| "—".into())}</span>
            </div>
            {move || view! { <Facts b=build.get() /> }}
            <controls::Controls current=build deployer=caller.may(Role::Deployer) />
        </section>
        {move || {
            has_pipeline()
                .then(|| view! { <section class="card" id="pipeline"><pipeline::Pipeline markup=pipeline filter /></section> })
        }}
        <section class="card">
            <log::BuildLog build_id lines follow_live=was_active on_end=refetch filter />
        </section>
    }
    .into_any()
}

#[component]
fn Facts(b: BuildView) -> impl IntoView {
    use crate::components::format::{duration_opt, short_image, short_time, short_time_opt};
    let image = b.image_id.as_deref().map(short_image).unwrap_or_else(|| "—".into());
    let tags = if b.tags.is_empty() { "—".to_string() } else { b.tags.join(", ") };
    view! {
        <dl class="facts">
            <dt>"Ref"</dt>
            <dd id="build-ref-name" class="mono">{b.git_ref.clone()}</dd>
            <dt>"Commit"</dt>
            <dd id="build-commit" class="mono">{b.commit_sha.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Trigger"</dt>
            <dd>{b.trigger.clone()}{b.actor.clone().map(|a| format!(" by {a}"))}</dd>
            <dt>"Queued"</dt>
            <dd>{short_time(&b.created_at)}</dd>
            <dt>"Started"</dt>
            <dd>{short_time_opt(b.started_at.as_deref())}</dd>
            <dt>"Took"</dt>
            <dd>{duration_opt(b.duration_ms)}</dd>
            <dt>"Image"</dt>
            <dd class="mono" title=b.image_id.clone()>{image}{b.image_removed.then_some(" (removed)")}</dd>
            <dt>"Tags"</dt>
            <dd class="mono">{tags}</dd>
            {b.build_only.then(|| view! {
                <dt>"Deploy"</dt>
                <dd id="build-only-note">"Build only: not deployed"</dd>
            })}
        </dl>
    }
    .into_any()
}

/// Re-fetches the build and its report every second until it is no longer
/// active (or the page is gone).
async fn poll_build(build: RwSignal<BuildView>, pipeline: RwSignal<Option<String>>) {
    loop {
        browser::sleep(1000).await;
        let Some(current) = build.try_get_untracked() else { return };
        if !current.is_active() {
            return;
        }
        if let Ok(p) = build_report(current.id).await {
            update(build, pipeline, p);
        }
    }
}

fn update(build: RwSignal<BuildView>, pipeline: RwSignal<Option<String>>, p: BuildPoll) {
    let _ = build.try_set(p.build);
    let _ = pipeline.try_set(p.pipeline);
}
