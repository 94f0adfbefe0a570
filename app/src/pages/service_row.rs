//! One service on the overview: live deployment, last build, Build (then
//! open the build page) and Deploy (the newest successful build).

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::{
    api::{builds::trigger_build, deploys::deploy_build},
    components::{
        deploys, error_text,
        format::{short_image, short_time},
        status_label, StatusBadge, Task,
    },
    wire::{DeploymentView, ServiceSummary},
};

#[component]
pub fn ServiceRow(svc: ServiceSummary, deployer: bool) -> impl IntoView {
    let id = svc.id;
    let live = RwSignal::new(svc.live.clone());
    let message = RwSignal::new(None::<(bool, String)>);
    let (build, deploy) = (Task::new(), Task::new());
    let navigate = use_navigate();
    // `only`: "Build only", never deployed (else the service's auto-deploy
    // setting decides).
    let start_build = move |only: bool| {
        message.set(None);
        let navigate = navigate.clone();
        build.run(trigger_build(id, None, false, only), move |answer| match answer {
            Ok(b) => navigate(&format!("/builds/{}", b.id), Default::default()),
            Err(e) => message.set(Some((false, error_text(&e)))),
        });
    };
    let build_only = start_build.clone();
    // Right after a rollback, deploying the newest build asks first.
    let newest_ok = svc.last_build.as_ref().filter(|b| b.status == "succeeded").map(|b| b.number);
    let start_deploy = move |_| {
        let current = live.with_untracked(|l| {
            l.as_ref().map(|d| deploys::Live {
                id: d.id,
                rollback_of: d.rollback_of,
                build_number: d.build_number,
            })
        });
        if !deploys::confirmed(deploys::redeploy_question(current, newest_ok)) {
            return;
        }
        message.set(None);
        deploy.run(deploy_build(id, None, None), move |answer| match answer {
            Ok(d) => {
                message.set(Some((true, format!("Deployment #{} {}…", d.id, status_label(&d.status)))));
                leptos::task::spawn_local(follow(d.id, live, message));
            }
            Err(e) => message.set(Some((false, super::service::deploy_error_text(&e)))),
        });
    };
    // Only a service that builds its own image has builds to show and start.
    let builds = svc.kind != "image" && svc.image_from.is_none();
    let origin = match (&svc.image_from, svc.kind.as_str()) {
        (Some(from), _) => Some(format!("image from {from}")),
        (None, "image") => Some("image service".to_string()),
        _ => None,
    };
    let last_build = svc.last_build.clone();
    let badge = last_build.as_ref().map(|b| b.status.clone()).unwrap_or_else(|| "never built".into());
    let build_link = last_build.map(|b| {
        view! { <a class="last-build" href=format!("/builds/{}", b.id)>{format!("#{} ({})", b.number, b.git_ref)}</a> }
    });
    view! {
        <li class="service" data-service=svc.name.clone()>
            <div class="service-main">
                <a class="service-link" href=format!("/services/{id}")>{svc.name.clone()}</a>
                <span class="badge kind-badge" data-kind=svc.kind.clone()>{svc.kind.clone()}</span>
                {svc.routed.then(|| view! {
                    <a class="muted mono service-url" href=svc.url.clone() target="_blank" rel="noopener">{svc.host.clone()}</a>
                })}
            </div>
            <div class="service-facts">
                {match origin {
                    Some(origin) => view! { <span class="label image-origin">{origin}</span> }.into_any(),
                    None => view! {
                        <span class="label">"Last build "</span>
                        <StatusBadge status=badge class="build-badge" />
                        {build_link}
                    }.into_any(),
                }}
                <span class="live-deployment">{move || live_text(live.get().as_ref())}</span>
                {svc.state.clone().map(|state| view! { <span class="container-state muted">{format!("· {state}")}</span> })}
            </div>
            {deployer.then(|| view! {
                <div class="service-actions">
                    <button type="button" class="build-now" hidden=!builds disabled=move || build.pending() on:click=move |_| start_build(false)>
                        "Build"
                    </button>
                    <button
                        type="button"
                        class="build-only secondary"
                        hidden=!builds
                        title="Build without deploying, even when the service deploys automatically"
                        disabled=move || build.pending()
                        on:click=move |_| build_only(true)
                    >
                        "Build only"
                    </button>
                    <button type="button" class="deploy-now secondary" disabled=move || deploy.pending() on:click=start_deploy>
                        "Deploy latest"
                    </button>
                </div>
            }.into_any())}
            {move || message.get().map(|(ok, text)| {
                let class = if ok { "service-message notice" } else { "service-message error" };
                view! { <p class=class role="status">{text}</p> }.into_any()
            })}
        </li>
    }
    .into_any()
}

fn live_text(live: Option<&DeploymentView>) -> String {
    match live {
        Some(d) => format!(
            "Live: #{} · image {} · since {}",
            d.id,
            short_image(&d.image_id),
            short_time(d.finished_at.as_deref().or(d.started_at.as_deref()).unwrap_or(&d.created_at),)
        ),
        None => "nothing live".into(),
    }
}

/// Follows the deployment until it settles; shows the result and, when it
/// went live, the new live deployment.
async fn follow(
    deployment_id: i64,
    live: RwSignal<Option<DeploymentView>>,
    message: RwSignal<Option<(bool, String)>>,
) {
    let alive = move || message.try_get_untracked().is_some();
    if let Some(d) = deploys::settled(deployment_id, &alive).await {
        let ok = d.status == "live";
        let _ = message.try_set(Some((ok, deploys::outcome(&d))));
        if ok {
            let _ = live.try_set(Some(d));
        }
    }
}
