//! The service page's danger zone (deployers): delete the service after
//! typing its name. The delete runs as a job; the overview no longer lists
//! the service once it is done.

use leptos::prelude::*;

use crate::{
    api::runtime::delete_service,
    components::{browser, error_text, Task},
};

#[component]
pub fn DeleteService(service_id: i64, name: String) -> impl IntoView {
    let typed = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let task = Task::new();
    let expected = name.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        task.run(delete_service(service_id, typed.get_untracked(), false), move |answer| match answer {
            Ok(_) => browser::go("/"),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <section class="card danger-zone" aria-labelledby="delete-title">
            <h2 id="delete-title">"Delete this service"</h2>
            <p class="muted">
                "Removes its containers, its images (unless another service's deployment needs them), its route, "
                "webhook secret, logs and history. Audit events stay. This cannot be undone."
            </p>
            <form class="inline-form" on:submit=submit>
                <div class="field">
                    <label for="delete-confirm">{format!("Type {name} to confirm")}</label>
                    <input id="delete-confirm" type="text" autocomplete="off" spellcheck="false" bind:value=typed />
                </div>
                <button id="delete-service" type="submit" class="danger"
                    disabled=move || task.pending() || typed.get().trim() != expected>
                    "Delete service"
                </button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
