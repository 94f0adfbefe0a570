//! `/projects/{id}`: one project's services (state, last build, live
//! deployment, Build and Deploy), its notifications and, once it has no
//! services, deleting it after typing its name.

use leptos::prelude::*;

use crate::{
    api::runtime::{delete_project, project_page},
    components::{browser, error_text, error_view, loading, require_user, resource, use_session, Task},
    pages::{
        overview::ProjectSection,
        service::{
            id_param,
            webhooks::{HookOwner, WebhookSection},
            with_id,
        },
    },
    wire::Role,
};

#[component]
pub fn ProjectPage() -> impl IntoView {
    let session = use_session();
    let id = id_param();
    let page = resource(move || id.get(), |id| with_id(id, project_page));
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match page.await {
                    Err(e) => error_view(e),
                    Ok(project) => {
                        let deployer = caller.may(Role::Deployer);
                        let (id, name, empty) = (project.id, project.name.clone(), project.services.is_empty());
                        view! {
                            <div class="page-head">
                                <p class="crumbs"><a href="/">"Projects"</a>" /"</p>
                                <h1>{name.clone()}</h1>
                            </div>
                            {deployer.then(|| view! { <ProjectActions id /> })}
                            <ProjectSection project deployer />
                            <WebhookSection owner=HookOwner::Project(id) caller deliveries=None />
                            {(deployer && empty).then(|| view! { <DeleteProject id name /> })}
                        }
                        .into_any()
                    }
                }
            })}
        </Suspense>
    }
    .into_any()
}

/// "Build all" and "Deploy all" (deployer).
#[component]
fn ProjectActions(id: i64) -> impl IntoView {
    let message = RwSignal::new(None::<(bool, String)>);
    let task = Task::new();
    let build_all = move |_| {
        task.run(crate::api::runtime::build_all(id), move |answer| match answer {
            Ok(b) => message.set(Some((true, format!("{} build(s) queued.", b.build_ids.len())))),
            Err(e) => message.set(Some((false, error_text(&e)))),
        });
    };
    let deploy_all = move |_| {
        task.run(crate::api::runtime::deploy_all(id), move |answer| match answer {
            Ok(a) => message.set(Some((
                true,
                format!("Deploying every service in order (job #{}).", a.job_id.unwrap_or_default()),
            ))),
            Err(e) => message.set(Some((false, error_text(&e)))),
        });
    };
    view! {
        <div class="service-actions project-actions">
            <button id="build-all" type="button" disabled=move || task.pending() on:click=build_all>"Build all"</button>
            <button id="deploy-all" type="button" class="secondary" disabled=move || task.pending() on:click=deploy_all>
                "Deploy all"
            </button>
            {move || message.get().map(|(ok, text)| {
                let class = if ok { "notice" } else { "error" };
                view! { <p id="project-message" class=class role="status">{text}</p> }
            })}
        </div>
    }
}

#[component]
fn DeleteProject(id: i64, name: String) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let task = Task::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        task.run(delete_project(id, typed.get_untracked()), move |answer| match answer {
            Ok(()) => browser::go("/"),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <section class="card danger-zone" aria-labelledby="delete-project-title">
            <h2 id="delete-project-title">"Delete this project"</h2>
            <form class="inline-form" on:submit=submit>
                <div class="field">
                    <label for="delete-project-confirm">{format!("Type {name} to confirm")}</label>
                    <input id="delete-project-confirm" type="text" autocomplete="off" bind:value=typed />
                </div>
                <button id="delete-project" type="submit" class="danger" disabled=move || task.pending()>
                    "Delete project"
                </button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
