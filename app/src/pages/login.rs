//! Sign in. On success the whole page reloads at `/`, so the new session
//! cookie is used by every request from then on.

use leptos::{html::Input, prelude::*, server_fn::ServerFn};

use crate::{
    api::{login, setup_state, Login},
    components::{browser, error_text, resource, Task},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let setup = resource(|| (), |_| setup_state());
    let sign_in = Task::new();
    let error = RwSignal::new(String::new());
    // A plain form posting to the server function (so it also works before
    // the WASM loaded), sent from here once hydrated. `ActionForm` would do
    // the same but parses the form data with `serde_qs`, which costs the
    // browser bundle some 40 KB.
    let name = NodeRef::<Input>::new();
    let password = NodeRef::<Input>::new();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = |input: NodeRef<Input>| input.get_untracked().map(|i| i.value()).unwrap_or_default();
        sign_in.run(login(value(name), value(password)), move |answer| match answer {
            Ok(_) => {
                error.set(String::new());
                browser::go("/");
            }
            Err(e) => error.set(error_text(&e)),
        });
    };

    view! {
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <form action=Login::url() method="post" on:submit=on_submit>
                <div class="field">
                    <label for="login-name">"Name"</label>
                    <input id="login-name" name="name" type="text" autocomplete="username" required node_ref=name />
                </div>
                <div class="field">
                    <label for="login-password">"Password"</label>
                    <input
                        id="login-password"
                        name="password"
                        type="password"
                        autocomplete="current-password"
                        required
                        node_ref=password
                    />
                </div>
                <p id="login-error" class="error" role="alert">{move || error.get()}</p>
                <button id="login-submit" type="submit" disabled=move || sign_in.pending()>
                    "Sign in"
                </button>
            </form>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let needs_setup = setup.await.map(|s| s.needs_setup).unwrap_or(false);
                    needs_setup.then(|| view! {
                        <p class="notice">
                            "No user exists yet. "
                            <a id="setup-link" href="/setup">"Create the first admin"</a>
                        </p>
                    }.into_any())
                })}
            </Suspense>
        </section>
    }
    .into_any()
}
