//! `/projects/:id/services/new`: the settings form, then the new service's page.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::{
    api::services::create_service,
    components::{loading, use_session, SignInPrompt},
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
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                match (caller, project.get()) {
                    (Caller::Anonymous, _) => view! { <SignInPrompt /> }.into_any(),
                    (_, None) => view! { <p class="error" role="alert">"There is no such project."</p> }.into_any(),
                    (caller, Some(project_id)) => {
                        view! { <NewService project_id deployer=caller.may(Role::Deployer) /> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn NewService(project_id: i64, deployer: bool) -> impl IntoView {
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
            <p class="crumbs"><a href=format!("/#project-{project_id}")>"Projects"</a>" /"</p>
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
