//! The deployment page (`/deployments/{id}`): status, image and commit, the
//! timeline (created, container started, first healthy probe, switched,
//! drained, old removed, then stop/start/restart), the health check, the
//! config snapshot (secrets masked) and, for a failed one, why and the
//! container's last log lines.

use leptos::prelude::*;

use crate::{
    api::runtime::deployment_page,
    components::{badge_class, error_view, format::short_time, loading, require_user, resource, use_session},
    pages::service::{id_param, with_id},
    wire::{DeploymentEventView, DeploymentPageView},
};

/// A timeline event in words.
fn event_text(e: &DeploymentEventView) -> String {
    let what = match e.kind.as_str() {
        "old_stopped" => "Previous container stopped first (volumes or published ports)",
        "container_started" => "Container started",
        "healthy" => "First healthy probe",
        "switched" => "Traffic switched to it",
        "drained" => "Previous deployment drained",
        "old_removed" => "Previous container removed",
        "stopped" => "Stopped",
        "started" => "Started",
        "restarted" => "Restarted (fresh container)",
        other => other,
    };
    let mut text = what.to_string();
    if let Some(actor) = &e.actor {
        text.push_str(&format!(" by {actor}"));
    }
    if let Some(detail) = &e.detail {
        text.push_str(&format!(" ({detail})"));
    }
    text
}

#[component]
pub fn DeploymentPage() -> impl IntoView {
    let session = use_session();
    let id = id_param();
    let page = resource(move || id.get(), |id| with_id(id, deployment_page));
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match page.await {
                    Err(e) => error_view(e),
                    Ok(page) => deployment_body(page),
                }
            })}
        </Suspense>
    }
    .into_any()
}

fn deployment_body(page: DeploymentPageView) -> AnyView {
    let DeploymentPageView { deployment: d, service, project, events } = page;
    let mut timeline = vec![(d.created_at.clone(), "Queued".to_string())];
    if let Some(t) = &d.started_at {
        timeline.push((t.clone(), "Started".into()));
    }
    timeline.extend(events.iter().map(|e| (e.at.clone(), event_text(e))));
    if let Some(t) = &d.finished_at {
        let end = if d.status == "failed" { "Failed" } else { "Deploy finished" };
        timeline.push((t.clone(), end.into()));
    }
    timeline.sort_by(|a, b| a.0.cmp(&b.0));
    let commit = d.commit_sha.clone().map(|c| c.chars().take(12).collect::<String>());
    let env: Vec<String> = d
        .config
        .env
        .iter()
        .map(|v| format!("{}={}", v.name, v.value.clone().unwrap_or_else(|| "********".into())))
        .collect();
    view! {
        <div class="page-head">
            <p class="crumbs">
                <a href=format!("/services/{}", d.service_id)>{format!("{project} / {service}")}</a>" /"
            </p>
            <h1>{format!("Deployment #{}", d.id)}</h1>
            <p><span id="deployment-status" class=badge_class(&d.status)>{d.status.replace('_', " ")}</span></p>
        </div>
        <section class="card" aria-labelledby="what-title">
            <h2 id="what-title">"What was deployed"</h2>
            <dl class="facts">
                <dt>"Image"</dt><dd class="mono">{d.image_id.clone()}</dd>
                <dt>"Build"</dt><dd>{d.build_number.map(|n| format!("#{n}")).unwrap_or_else(|| "–".into())}
                    " " <span class="mono">{commit.unwrap_or_default()}</span></dd>
                <dt>"By"</dt><dd>{d.actor.clone().unwrap_or_else(|| "–".into())}</dd>
                <dt>"Reason"</dt><dd>{d.reason.clone().unwrap_or_else(|| "–".into())}</dd>
                {d.rollback_of.map(|r| view! { <dt>"Rollback to"</dt><dd><a href=format!("/deployments/{r}")>{format!("#{r}")}</a></dd> })}
            </dl>
        </section>
        <section class="card" aria-labelledby="timeline-title">
            <h2 id="timeline-title">"Timeline"</h2>
            <ol id="deployment-timeline" class="plain">
                {timeline.into_iter().map(|(at, text)| view! {
                    <li><span class="mono muted">{short_time(&at)}</span>" " {text}</li>
                }).collect_view()}
            </ol>
        </section>
        {d.error.clone().map(|e| view! {
            <section class="card" aria-labelledby="failure-title">
                <h2 id="failure-title">"Why it failed"</h2>
                <p class="error">{e}</p>
                {d.log_tail.clone().map(|t| view! { <pre class="log" id="deployment-log-tail">{t}</pre> })}
            </section>
        })}
        <section class="card" aria-labelledby="config-title">
            <h2 id="config-title">"Config snapshot"</h2>
            <dl class="facts">
                <dt>"Health check"</dt><dd>{d.config.health.clone()}</dd>
                <dt>"Kind"</dt><dd>{d.config.kind.clone()}</dd>
                <dt>"Port"</dt><dd>{d.config.port.map_or_else(|| "–".to_string(), |p| p.to_string())}</dd>
                <dt>"Command"</dt><dd class="mono">{if d.config.command.is_empty() { "the image's".to_string() } else { d.config.command.join(" ") }}</dd>
                <dt>"Volumes"</dt><dd class="mono">{if d.config.volumes.is_empty() { "–".to_string() } else { d.config.volumes.iter().map(|v| format!("{}:{}", v.name, v.path)).collect::<Vec<_>>().join(" ") }}</dd>
                <dt>"Memory"</dt><dd>{format!("{} MB", d.config.memory_mb)}</dd>
                <dt>"CPU"</dt><dd>{format!("{} millicores", d.config.cpu_millis)}</dd>
                <dt>"Drain"</dt><dd>{format!("{} s", d.config.drain_secs)}</dd>
                <dt>"Environment"</dt><dd class="mono">{if env.is_empty() { "–".to_string() } else { env.join(" ") }}</dd>
            </dl>
        </section>
    }
    .into_any()
}
