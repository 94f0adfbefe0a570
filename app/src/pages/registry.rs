//! `/projects/:id/registry`: the image registry a project's builds push to
//! (every tag) and deploys pull from by digest. Everyone signed in sees it,
//! never the password; admins set and remove it.

use leptos::prelude::*;

use crate::{
    api::integrations::{clear_project_registry, project_registry, set_project_registry},
    components::{
        error_text, error_view,
        form::{FieldMessage, FormErrors},
        loading, require_user, resource, use_session, Task,
    },
    pages::service::{id_param, with_id},
    wire::{RegistryForm, RegistryView, Role},
};

const FIELDS: &[&str] = &["registry_host", "registry_image", "registry_username", "registry_password"];

#[component]
pub fn RegistryPage() -> impl IntoView {
    let session = use_session();
    let id = id_param();
    let page = resource(move || id.get(), |id| with_id(id, project_registry));
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match page.await {
                    Err(e) => error_view(e),
                    Ok(current) => {
                        let admin = caller.may(Role::Admin);
                        view! { <Registry project=id.get_untracked().unwrap_or(0) current admin /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Registry(project: i64, current: Option<RegistryView>, admin: bool) -> impl IntoView {
    let shown = RwSignal::new(current);
    let summary = move || {
        match shown.get() {
        None => view! { <p id="registry-state" class="muted">"No registry: images stay in the local Docker engine."</p> }
            .into_any(),
        Some(r) => view! {
            <p id="registry-state">
                "Images are pushed to "<code>{r.repository_pattern.clone()}</code>
                {match (&r.username, r.password_set) {
                    (Some(u), true) => format!(" as {u} (password set)"),
                    (Some(u), false) => format!(" as {u} (no password)"),
                    (None, _) => " without credentials".to_string(),
                }}
            </p>
        }
        .into_any(),
    }
    };
    view! {
        <div class="page-head">
            <p class="crumbs"><a href=format!("/projects/{project}")>"Project"</a>" /"</p>
            <h1>"Registry"</h1>
        </div>
        <section class="card narrow">{summary}</section>
        {admin.then(|| view! { <RegistryEdit project shown /> })}
    }
}

#[component]
fn RegistryEdit(project: i64, shown: RwSignal<Option<RegistryView>>) -> impl IntoView {
    let now = shown.get_untracked();
    let host = RwSignal::new(now.as_ref().map(|r| r.host.clone()).unwrap_or_default());
    let image = RwSignal::new(now.as_ref().map(|r| r.image.clone()).unwrap_or_default());
    let username = RwSignal::new(now.as_ref().and_then(|r| r.username.clone()).unwrap_or_default());
    let password = RwSignal::new(String::new());
    let errors = FormErrors::new(FIELDS);
    let (save, remove) = (Task::new(), Task::new());
    let removed_error = RwSignal::new(None::<String>);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let form = RegistryForm {
            host: host.get_untracked(),
            image: image.get_untracked(),
            username: Some(username.get_untracked()).filter(|u| !u.is_empty()),
            password: Some(password.get_untracked()).filter(|p| !p.is_empty()),
        };
        save.run(set_project_registry(project, form), move |answer| match answer {
            Ok(view) => {
                shown.set(Some(view));
                password.set(String::new());
            }
            Err(e) => errors.show(&e),
        });
    };
    let on_remove = move |_| {
        remove.run(clear_project_registry(project), move |answer| match answer {
            Ok(()) => shown.set(None),
            Err(e) => removed_error.set(Some(error_text(&e))),
        });
    };
    let input = move |id: &'static str,
                      field: &'static str,
                      label: &'static str,
                      kind: &'static str,
                      value: RwSignal<String>| {
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <input
                    id=id
                    type=kind
                    autocomplete="off"
                    aria-invalid=errors.invalid(field)
                    aria-describedby=errors.described(field, id)
                    bind:value=value
                />
                <FieldMessage errors field input=id />
            </div>
        }
    };
    view! {
        <section class="card narrow">
            <h2>"Set the registry"</h2>
            <form id="registry-form" on:submit=on_submit novalidate>
                {input("registry-host", "registry_host", "Host (host[:port])", "text", host)}
                {input("registry-image", "registry_image", "Image path (services go under it)", "text", image)}
                {input("registry-username", "registry_username", "User name", "text", username)}
                {input("registry-password", "registry_password", "Password or token (kept secret; empty keeps it)", "password", password)}
                {move || errors.general().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button id="registry-save" type="submit" disabled=move || save.pending()>"Save"</button>
                <button id="registry-remove" type="button" class="danger" disabled=move || remove.pending() on:click=on_remove>
                    "Remove registry"
                </button>
            </form>
            {move || removed_error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
