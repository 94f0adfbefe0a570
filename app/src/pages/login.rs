//! Sign in. On success the whole page reloads at `/`, so the new session
//! cookie is used by every request from then on.

use leptos::{form::ActionForm, prelude::*};

use crate::{
    api::{setup_state, Login},
    components::{browser, error_text},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let setup = Resource::new(|| (), |_| setup_state());
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            browser::go("/");
        }
    });
    let error = move || match login.value().get() {
        Some(Err(e)) => error_text(&e),
        _ => String::new(),
    };

    view! {
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <ActionForm action=login>
                <div class="field">
                    <label for="login-name">"Name"</label>
                    <input id="login-name" name="name" type="text" autocomplete="username" required />
                </div>
                <div class="field">
                    <label for="login-password">"Password"</label>
                    <input
                        id="login-password"
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                    />
                </div>
                <p id="login-error" class="error" role="alert">{error}</p>
                <button id="login-submit" type="submit" disabled=move || login.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let needs_setup = setup.await.map(|s| s.needs_setup).unwrap_or(false);
                    needs_setup.then(|| view! {
                        <p class="notice">
                            "No user exists yet. "
                            <a id="setup-link" href="/setup">"Create the first admin"</a>
                        </p>
                    })
                })}
            </Suspense>
        </section>
    }
    .into_any()
}
