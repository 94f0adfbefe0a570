//! Cancel an active build, deploy a succeeded one; `#build-error` shows a
//! refused action, or else why the build failed.

use leptos::prelude::*;

use crate::{
    api::{builds::cancel_build, deploys::deploy_build},
    components::{error_text, Task},
    wire::{BuildView, DeploymentView},
};

#[component]
pub fn Controls(current: RwSignal<BuildView>, deployer: bool) -> impl IntoView {
    let build = current;
    let reason = RwSignal::new(String::new());
    let (cancel, deploy) = (Task::new(), Task::new());
    let action_error = RwSignal::new(None::<String>);
    // The deployment this page started last.
    let deployed = RwSignal::new(None::<DeploymentView>);
    let active = move || build.with(BuildView::is_active);
    let deployable = move || build.with(|b| b.status == "succeeded" && !b.image_removed);
    let on_deploy = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action_error.set(None);
        let b = build.get_untracked();
        let r = reason.get_untracked().trim().to_string();
        deploy.run(
            deploy_build(b.service_id, Some(b.id), Some(r).filter(|r| !r.is_empty())),
            move |answer| match answer {
                Ok(d) => deployed.set(Some(d)),
                Err(e) => {
                    deployed.set(None);
                    action_error.set(Some(error_text(&e)));
                }
            },
        );
    };
    let on_cancel = move |_| {
        action_error.set(None);
        cancel.run(cancel_build(build.get_untracked().id), move |answer| match answer {
            Ok(b) => build.set(b),
            Err(e) => action_error.set(Some(error_text(&e))),
        });
    };
    let error = move || action_error.get().or_else(|| build.with(|b| b.error.clone()));
    view! {
        {move || error().map(|e| view! { <p id="build-error" class="error" role="alert">{e}</p> }.into_any())}
        {move || (deployer && active()).then(|| view! {
            <button id="cancel-build" type="button" class="danger" on:click=on_cancel disabled=move || cancel.pending()>
                "Cancel build"
            </button>
        }.into_any())}
        {move || (deployer && deployable()).then(|| view! {
            <form class="inline-form" on:submit=on_deploy>
                <div class="field">
                    <label for="deploy-this-reason">"Reason (optional)"</label>
                    <input id="deploy-this-reason" type="text" bind:value=reason />
                </div>
                <button id="deploy-this" type="submit" disabled=move || deploy.pending()>
                    "Deploy this build"
                </button>
            </form>
        }.into_any())}
        // No status here (it would go stale): the service page follows it.
        {move || deployed.get().map(|d| view! {
            <p id="deploy-message" class="notice" role="status">
                {format!("Deployment #{} started. ", d.id)}
                <a href=format!("/services/{}", d.service_id)>"Follow it on the service page"</a>
            </p>
        }.into_any())}
    }
    .into_any()
}
