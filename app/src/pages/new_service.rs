//! `/projects/:id/services/new`: the settings form, then the new service's page.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::{
    api::services::create_service,
    components::{error_view, loading, use_session, SignInPrompt},
    error::AppError,
    pages::service::{
        id_param,
        settings_form::{Save, SaveCall, ServiceForm},
    },
    wire::{Caller, Role, ServiceDetail, ServiceSettings},
};

#[component]
pub fn NewServicePage() -> impl IntoView {
    let session = use_session();
    let project = id_param();
    // The project's name for the breadcrumb. The overview's resource type:
    // no new deserializer in the bundle.
    let projects = crate::pages::overview::projects_resource();
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if caller == Caller::Anonymous {
                    return view! { <SignInPrompt /> }.into_any();
                }
                let id = project.get();
                let found = projects.await.ok().and_then(|list| list.into_iter().find(|p| Some(p.id) == id));
                match found {
                    None => error_view(AppError::NotFound("there is no such project".into())),
                    Some(p) => {
                        view! { <NewService project_id=p.id project=p.name deployer=caller.may(Role::Deployer) /> }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn NewService(project_id: i64, project: String, deployer: bool) -> impl IntoView {
    let navigate = use_navigate();
    let save = Save {
        call: Callback::new(move |s: ServiceSettings| -> SaveCall {
            Box::pin(create_service(project_id, s))
        }),
        done: Callback::new(move |detail: ServiceDetail| {
            navigate(&format!("/services/{}", detail.id), Default::default())
        }),
    };
    view! {
        <div class="page-head">
            <p class="crumbs">
                <a href="/">"Projects"</a>" / "<a href=format!("/#project-{project_id}")>{project}</a>" /"
            </p>
            <h1>"New service"</h1>
        </div>
        {(!deployer).then(|| view! {
            <p class="error" role="alert">"Your role may not create services; ask a deployer or an admin."</p>
        }.into_any())}
        <section class="card">
            <ServiceForm
                initial=ServiceSettings::defaults()
                editable=deployer
                save
                reload_on_save=false
                submit_label="Create service"
            />
        </section>
    }
    .into_any()
}
