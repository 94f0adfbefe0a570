//! The service page's actions: build a ref (then open the build page) and
//! deploy the newest successful build with a reason.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::{
    api::{builds::trigger_build, deploys::deploy_build},
    components::{deploys, error_text, status_label, Task},
    error::AppError,
    wire::{BuildView, DeploymentView},
};

#[component]
pub fn ActionsPanel(
    service_id: i64,
    /// Shown in `#action-message` (deploys and rollbacks started).
    notice: RwSignal<Option<String>>,
    on_deployed: Callback<DeploymentView>,
    /// What to ask before deploying the newest build, if anything.
    question: Callback<(), Option<String>>,
) -> impl IntoView {
    let git_ref = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let (build, deploy) = (Task::new(), Task::new());
    let navigate = use_navigate();
    // `only`: "Build only", never deployed (else the service's auto-deploy
    // setting decides).
    let run_build = move |only: bool| {
        error.set(None);
        let r = git_ref.get_untracked().trim().to_string();
        let navigate = navigate.clone();
        build.run(trigger_build(service_id, Some(r).filter(|r| !r.is_empty()), false, only), move |answer| {
            match answer {
                Ok(b) => {
                    let b: BuildView = b;
                    navigate(&format!("/builds/{}", b.id), Default::default());
                }
                Err(e) => error.set(Some(error_text(&e))),
            }
        });
    };
    let build_only = run_build.clone();
    let start_build = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        run_build(false);
    };
    let start_deploy = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !deploys::confirmed(question.run(())) {
            return;
        }
        error.set(None);
        notice.set(None);
        let r = reason.get_untracked().trim().to_string();
        deploy.run(deploy_build(service_id, None, Some(r).filter(|r| !r.is_empty())), move |answer| {
            match answer {
                Ok(d) => {
                    reason.set(String::new());
                    notice.set(Some(format!("Deployment #{} started ({}).", d.id, status_label(&d.status))));
                    on_deployed.run(d);
                }
                Err(e) => error.set(Some(deploy_error(&e))),
            }
        });
    };
    view! {
        <div class="actions">
            <form class="inline-form" on:submit=start_build>
                <div class="field">
                    <label for="build-ref">"Branch, tag or commit (empty: the service's branch)"</label>
                    <input id="build-ref" type="text" spellcheck="false" bind:value=git_ref />
                </div>
                <button id="build-now" type="submit" disabled=move || build.pending()>"Build"</button>
                <button
                    id="build-only"
                    type="button"
                    class="secondary"
                    title="Build without deploying, even when the service deploys automatically"
                    disabled=move || build.pending()
                    on:click=move |_| build_only(true)
                >
                    "Build only"
                </button>
            </form>
            <form class="inline-form" on:submit=start_deploy>
                <div class="field">
                    <label for="deploy-reason">"Reason (optional)"</label>
                    <input id="deploy-reason" type="text" bind:value=reason />
                </div>
                <button id="deploy-latest" type="submit" disabled=move || deploy.pending()>
                    "Deploy latest build"
                </button>
            </form>
        </div>
        {move || error.get().map(|e| view! { <p id="action-error" class="error" role="alert">{e}</p> }.into_any())}
    }
    .into_any()
}

/// A deploy refusal; the common "nothing to deploy" case reads plainly.
pub fn deploy_error(e: &AppError) -> String {
    match e {
        AppError::NotFound(_) => format!("Nothing to deploy: {}", error_text(e)),
        e => error_text(e),
    }
}
