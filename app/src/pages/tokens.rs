//! `/account/tokens`: the signed-in user's API tokens (an admin sees
//! everyone's): create one (shown once), list, revoke.

use leptos::prelude::*;

use crate::{
    api::integrations::{create_token, list_tokens, revoke_token},
    components::{
        error_text, error_view,
        form::{FieldMessage, FormErrors},
        format::short_time_opt,
        loading, require_user, resource, use_session, Task,
    },
    wire::{NewToken, TokenView},
};

#[component]
pub fn TokensPage() -> impl IntoView {
    let session = use_session();
    let tokens = resource(|| (), |_| list_tokens());
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                if let Some(prompt) = require_user(&session.caller().await) {
                    return prompt;
                }
                match tokens.await {
                    Err(e) => error_view(e),
                    Ok(list) => view! { <Tokens list /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Tokens(list: Vec<TokenView>) -> impl IntoView {
    let tokens = RwSignal::new(list);
    let name = RwSignal::new(String::new());
    let days = RwSignal::new("90".to_string());
    let error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<NewToken>);
    let create = Task::new();
    let errors = FormErrors::new(&["name", "expires_in_days"]);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        created.set(None);
        errors.clear();
        create.run(create_token(name.get_untracked(), days.get_untracked().parse().ok()), move |answer| {
            match answer {
                Ok(new) => {
                    tokens.update(|t| t.insert(0, new.info.clone()));
                    created.set(Some(new));
                    name.set(String::new());
                    error.set(None);
                }
                Err(e) if e.field_errors().is_empty() => error.set(Some(error_text(&e))),
                Err(e) => {
                    error.set(None);
                    errors.show(&e);
                }
            }
        });
    };
    view! {
        <div class="page-head">
            <h1>"API tokens"</h1>
        </div>
        <section class="card narrow">
            <p class="muted">
                "A token acts with your role for scripts and the CLI: "
                <code>"SLIPWAY_TOKEN=… slipway build <service> -f"</code>
            </p>
            <form id="token-form" on:submit=on_submit>
                <div class="field">
                    <label for="token-name">"Name"</label>
                    <input
                        id="token-name"
                        required
                        maxlength="60"
                        aria-invalid=errors.invalid("name")
                        aria-describedby=errors.described("name", "token-name")
                        bind:value=name
                    />
                    <FieldMessage errors field="name" input="token-name" />
                </div>
                <div class="field">
                    <label for="token-days">"Expires"</label>
                    <select
                        id="token-days"
                        aria-invalid=errors.invalid("expires_in_days")
                        aria-describedby=errors.described("expires_in_days", "token-days")
                        bind:value=days
                    >
                        <option value="30">"in 30 days"</option>
                        <option value="90">"in 90 days"</option>
                        <option value="365">"in a year"</option>
                        <option value="">"never"</option>
                    </select>
                    <FieldMessage errors field="expires_in_days" input="token-days" />
                </div>
                {move || errors.general().map(|g| view! { <p class="error" role="alert">{g}</p> }.into_any())}
                <button id="token-create" type="submit" disabled=move || create.pending()>
                    "Create token"
                </button>
            </form>
            {move || error.get().map(|e| view! { <p id="tokens-error" class="error" role="alert">{e}</p> }.into_any())}
            {move || {
                created
                    .get()
                    .map(|new| {
                        view! {
                            <div class="notice" role="status">
                                <p>"Copy this token now; it is not shown again:"</p>
                                <code id="new-token" class="secret-once">{new.token}</code>
                            </div>
                        }
                        .into_any()
                    })
            }}
        </section>
        <section class="card">
            <div class="table-wrap" data-empty="No API tokens yet.">
                <table id="tokens">
                    <thead>
                        <tr>
                            <th>"Name"</th>
                            <th>"Token"</th>
                            <th>"Created"</th>
                            <th>"Expires"</th>
                            <th>"Last used"</th>
                            <th>"State"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || tokens.get().into_iter().map(|token| view! {
                            <TokenRow token tokens error />
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn TokenRow(
    token: TokenView,
    tokens: RwSignal<Vec<TokenView>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let id = token.id;
    let revoke = Task::new();
    let on_revoke = move |_| {
        revoke.run(revoke_token(id), move |answer| match answer {
            Ok(updated) => tokens.update(|all| {
                if let Some(t) = all.iter_mut().find(|t| t.id == updated.id) {
                    *t = updated;
                }
            }),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    let revoked = token.revoked_at.is_some();
    view! {
        <tr data-token-id=id>
            <td>{token.name.clone()}</td>
            <td><code>{format!("{}…", token.prefix)}</code></td>
            <td>{short_time_opt(Some(&token.created_at))}</td>
            <td>{token.expires_at.as_deref().map_or("never".to_string(), |t| short_time_opt(Some(t)))}</td>
            <td>{short_time_opt(token.last_used_at.as_deref())}</td>
            <td>{if revoked { "revoked" } else { "active" }}</td>
            <td>
                {(!revoked)
                    .then(|| {
                        view! {
                            <button class="small danger" on:click=on_revoke>
                                "Revoke"
                            </button>
                        }
                        .into_any()
                    })}
            </td>
        </tr>
    }
}
