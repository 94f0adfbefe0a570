//! First run: create the first admin with the one-time token from the server log.

use leptos::prelude::*;

use crate::{
    api::{setup_admin, setup_state},
    components::{
        browser,
        form::{FieldMessage, FormErrors},
        loading, resource, Task,
    },
};

#[component]
pub fn SetupPage() -> impl IntoView {
    let state = resource(|| (), |_| setup_state());
    view! {
        <section class="card narrow">
            <h1>"Set up Slipway"</h1>
            <Suspense fallback=loading>
                {move || Suspend::new(async move {
                    match state.await {
                        Ok(s) if !s.needs_setup => view! {
                            <p>"Slipway is already set up. " <a href="/login">"Sign in"</a></p>
                        }
                            .into_any(),
                        _ => view! { <SetupForm /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
    .into_any()
}

#[component]
fn SetupForm() -> impl IntoView {
    let token = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let submit = Task::new();
    let error = RwSignal::new(String::new());
    let errors = FormErrors::new(&["name", "password"]);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        error.set(String::new());
        let call = setup_admin(token.get_untracked(), name.get_untracked(), password.get_untracked());
        submit.run(call, move |answer| match answer {
            Ok(_) => {
                error.set(String::new());
                browser::go("/");
            }
            Err(e) if e.field_errors().is_empty() => error.set(e.message()),
            Err(e) => errors.show(&e),
        });
    };
    view! {
        <p>"Enter the one-time setup token printed in the server log, and the first admin's name and password."</p>
        <form on:submit=on_submit>
            <div class="field">
                <label for="setup-token">"Setup token"</label>
                <input id="setup-token" type="text" autocomplete="off" required bind:value=token />
            </div>
            <div class="field">
                <label for="setup-name">"Admin name"</label>
                <input
                    id="setup-name"
                    type="text"
                    autocomplete="username"
                    required
                    aria-invalid=errors.invalid("name")
                    aria-describedby=errors.described("name", "setup-name")
                    bind:value=name
                />
                <FieldMessage errors field="name" input="setup-name" />
            </div>
            <div class="field">
                <label for="setup-password">"Password (at least 12 characters)"</label>
                <input
                    id="setup-password"
                    type="password"
                    autocomplete="new-password"
                    required
                    aria-invalid=errors.invalid("password")
                    aria-describedby=errors.described("password", "setup-password")
                    bind:value=password
                />
                <FieldMessage errors field="password" input="setup-password" />
            </div>
            <p id="setup-error" class="error" role="alert">
                {move || errors.general().unwrap_or_else(|| error.get())}
            </p>
            <button id="setup-submit" type="submit" disabled=move || submit.pending()>
                "Create admin"
            </button>
        </form>
    }
    .into_any()
}
