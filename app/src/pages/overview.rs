//! `/`: every project with every service, its live deployment and last
//! build, one-click Build and Deploy, and the new-project form.

use leptos::prelude::*;

use crate::{
    api::services::{create_project, overview},
    components::{error_text, error_view, loading, require_user, resource, use_session, Res, Task},
    error::AppError,
    pages::service_row::ServiceRow,
    wire::{ProjectView, Role},
};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let session = use_session();
    let projects = projects_resource();
    view! {
        <Transition fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match projects.await {
                    Err(e) => error_view(e),
                    Ok(list) => {
                        let deployer = caller.may(Role::Deployer);
                        view! { <Overview list deployer projects /> }.into_any()
                    }
                }
            })}
        </Transition>
    }
    .into_any()
}

/// Every project with its services. Shared with the new-service page (its
/// breadcrumb): one instantiation of the resource in the bundle.
pub fn projects_resource() -> Res<Result<Vec<ProjectView>, AppError>> {
    resource(|| (), |_| overview())
}

#[component]
fn Overview(
    list: Vec<ProjectView>,
    deployer: bool,
    projects: Res<Result<Vec<ProjectView>, AppError>>,
) -> impl IntoView {
    let empty = list.is_empty();
    view! {
        <div class="page-head">
            <h1>"Projects"</h1>
        </div>
        {deployer.then(|| view! { <NewProjectForm on_created=Callback::new(move |()| projects.refetch()) /> }.into_any())}
        {empty.then(|| view! { <p class="muted">"No projects yet."</p> }.into_any())}
        {list.into_iter().map(|project| view! { <ProjectSection project deployer /> }.into_any()).collect_view()}
    }
    .into_any()
}

#[component]
fn NewProjectForm(on_created: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let create = Task::new();
    let error = RwSignal::new(None::<String>);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.run(create_project(name.get_untracked().trim().to_string()), move |answer| match answer {
            Ok(_) => {
                error.set(None);
                name.set(String::new());
                on_created.run(());
            }
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <form class="card inline-form new-project" on:submit=on_submit>
            <div class="field">
                <label for="new-project-name">"New project name"</label>
                <input id="new-project-name" type="text" spellcheck="false" required bind:value=name />
            </div>
            <button id="new-project-submit" type="submit" disabled=move || create.pending()>
                "Create project"
            </button>
            {move || error.get().map(|e| view! { <p id="new-project-error" class="error" role="alert">{e}</p> }.into_any())}
        </form>
    }
    .into_any()
}

#[component]
pub fn ProjectSection(project: ProjectView, deployer: bool) -> impl IntoView {
    let new_service = format!("/projects/{}/services/new", project.id);
    let notifications = format!("/projects/{}/notifications", project.id);
    let empty = project.services.is_empty();
    view! {
        <section class="card project" id=format!("project-{}", project.id) data-project=project.name.clone()>
            <div class="card-head">
                <h2><a href=format!("/projects/{}", project.id)>{project.name.clone()}</a></h2>
                <a class="notifications-link" href=notifications>"Notifications"</a>
                <a class="registry-link" href=format!("/projects/{}/registry", project.id)>"Registry"</a>
                {deployer.then(|| view! { <a class="new-service button-link" href=new_service>"New service"</a> }.into_any())}
            </div>
            {empty.then(|| view! { <p class="muted">"No services yet."</p> }.into_any())}
            <ul class="services">
                {project
                    .services
                    .into_iter()
                    .map(|svc| view! { <ServiceRow svc deployer /> }.into_any())
                    .collect_view()}
            </ul>
        </section>
    }
    .into_any()
}
