//! Cancel an active build, deploy a succeeded one; `#build-error` shows a
//! refused action, or else why the build failed.

use leptos::prelude::*;

use crate::{
    api::{builds::cancel_build, deploys::deploy_build},
    components::error_text,
    wire::{BuildView, DeploymentView},
};

#[component]
pub fn Controls(current: RwSignal<BuildView>, deployer: bool) -> impl IntoView {
    let build = current;
    let reason = RwSignal::new(String::new());
    let cancel = Action::new(|id: &i64| cancel_build(*id));
    let deploy = Action::new(|(service, id, reason): &(i64, i64, Option<String>)| {
        deploy_build(*service, Some(*id), reason.clone())
    });
    let action_error = RwSignal::new(None::<String>);
    Effect::new(move |_| match cancel.value().get() {
        Some(Ok(b)) => build.set(b),
        Some(Err(e)) => action_error.set(Some(error_text(&e))),
        None => {}
    });
    Effect::new(move |_| {
        if let Some(Err(e)) = deploy.value().get() {
            action_error.set(Some(error_text(&e)));
        }
    });
    let deployed = move || -> Option<DeploymentView> { deploy.value().get().and_then(Result::ok) };
    let active = move || build.with(BuildView::is_active);
    let deployable = move || build.with(|b| b.status == "succeeded" && !b.image_removed);
    let on_deploy = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action_error.set(None);
        let b = build.get_untracked();
        let r = reason.get_untracked().trim().to_string();
        deploy.dispatch((b.service_id, b.id, Some(r).filter(|r| !r.is_empty())));
    };
    let on_cancel = move |_| {
        action_error.set(None);
        cancel.dispatch(build.get_untracked().id);
    };
    let error = move || action_error.get().or_else(|| build.with(|b| b.error.clone()));
    view! {
        {move || error().map(|e| view! { <p id="build-error" class="error" role="alert">{e}</p> })}
        {move || (deployer && active()).then(|| view! {
            <button id="cancel-build" type="button" class="danger" on:click=on_cancel disabled=move || cancel.pending().get()>
                "Cancel build"
            </button>
        })}
        {move || (deployer && deployable()).then(|| view! {
            <form class="inline-form" on:submit=on_deploy>
                <div class="field">
                    <label for="deploy-this-reason">"Reason (optional)"</label>
                    <input id="deploy-this-reason" type="text" bind:value=reason />
                </div>
                <button id="deploy-this" type="submit" disabled=move || deploy.pending().get()>
                    "Deploy this build"
                </button>
            </form>
        })}
        {move || deployed().map(|d| view! {
            <p id="deploy-message" class="notice" role="status">
                {format!("Deployment #{} started ({}). ", d.id, d.status)}
                <a href=format!("/services/{}", d.service_id)>"Follow it on the service page"</a>
            </p>
        })}
    }
    .into_any()
}
