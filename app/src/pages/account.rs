//! The signed-in user's own password.

use leptos::prelude::*;

use crate::{
    api::team::change_password,
    components::{
        form::{FieldMessage, FormErrors},
        loading, use_session, SignInPrompt, Task,
    },
    wire::Caller,
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let session = use_session();
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                match session.caller().await {
                    Caller::Anonymous => view! { <SignInPrompt /> }.into_any(),
                    Caller::User { name, role, .. } => view! { <PasswordForm name role=role.as_str() /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn PasswordForm(name: String, role: &'static str) -> impl IntoView {
    let current = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let change = Task::new();
    // (class, text) of `#account-message`.
    let message = RwSignal::new(("", String::new()));
    let errors = FormErrors::new(&["current", "password"]);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        message.set(("", String::new()));
        change.run(change_password(current.get_untracked(), new_password.get_untracked()), move |answer| {
            match answer {
                Ok(()) => {
                    message.set(("ok", "Password changed. Your other sessions were signed out.".to_string()));
                    current.set(String::new());
                    new_password.set(String::new());
                }
                Err(e) if e.field_errors().is_empty() => message.set(("error", e.message())),
                Err(e) => errors.show(&e),
            }
        });
    };
    view! {
        <section class="card narrow">
            <h1>"Account"</h1>
            <p class="muted">"Signed in as " <strong>{name}</strong> ", role " {role} "."</p>
            <p><a id="account-tokens" href="/account/tokens">"API tokens for scripts and the CLI"</a></p>
            <h2>"Change password"</h2>
            <form on:submit=on_submit>
                <div class="field">
                    <label for="current-password">"Current password"</label>
                    <input
                        id="current-password"
                        type="password"
                        autocomplete="current-password"
                        required
                        aria-invalid=errors.invalid("current")
                        aria-describedby=errors.described("current", "current-password")
                        bind:value=current
                    />
                    <FieldMessage errors field="current" input="current-password" />
                </div>
                <div class="field">
                    <label for="new-password">"New password (at least 12 characters)"</label>
                    <input
                        id="new-password"
                        type="password"
                        autocomplete="new-password"
                        required
                        aria-invalid=errors.invalid("password")
                        aria-describedby=errors.described("password", "new-password")
                        bind:value=new_password
                    />
                    <FieldMessage errors field="password" input="new-password" />
                </div>
                {move || errors.general().map(|g| view! { <p class="error" role="alert">{g}</p> }.into_any())}
                <p id="account-message" class=move || message.get().0 role="status">{move || message.get().1}</p>
                <button id="change-password-submit" type="submit" disabled=move || change.pending()>
                    "Change password"
                </button>
            </form>
        </section>
    }
    .into_any()
}
