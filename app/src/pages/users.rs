//! `/admin/users`: users and roles (admins; others see the server's refusal).

use leptos::prelude::*;

use crate::{
    api::team::{create_user, list_users, reset_password, set_user_disabled, set_user_role},
    components::{
        error_text, error_view,
        form::{FieldMessage, FormErrors},
        format::short_time,
        loading, require_user, resource, use_session, Task,
    },
    wire::{Role, UserView},
};

#[component]
pub fn UsersPage() -> impl IntoView {
    let session = use_session();
    let users = resource(|| (), |_| list_users());
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                if let Some(prompt) = require_user(&session.caller().await) {
                    return prompt;
                }
                match users.await {
                    Err(e) => error_view(e),
                    Ok(list) => view! { <Users list /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn Users(list: Vec<UserView>) -> impl IntoView {
    let users = RwSignal::new(list);
    let error = RwSignal::new(None::<String>);
    let message = RwSignal::new(None::<String>);
    let ctx = Feedback { error, message };
    view! {
        <div class="page-head">
            <h1>"Users"</h1>
        </div>
        <NewUserForm users ctx />
        {move || error.get().map(|e| view! { <p id="users-error" class="error" role="alert">{e}</p> }.into_any())}
        {move || message.get().map(|m| view! { <p id="users-message" class="notice" role="status">{m}</p> }.into_any())}
        <section class="card">
            <div class="table-wrap">
                <table id="users">
                    {users_head()}
                    <UserRows users ctx />
                </table>
            </div>
        </section>
    }
    .into_any()
}

/// Where the page reports refusals and successes.
#[derive(Clone, Copy)]
struct Feedback {
    error: RwSignal<Option<String>>,
    message: RwSignal<Option<String>>,
}

impl Feedback {
    fn clear(&self) {
        self.error.set(None);
        self.message.set(None);
    }
}

fn role_options(current: Role) -> impl IntoView {
    Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == current>{r.as_str()}</option> }.into_any())
        .collect_view()
}

#[component]
fn NewUserForm(users: RwSignal<Vec<UserView>>, ctx: Feedback) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Viewer.as_str().to_string());
    let create = Task::new();
    let errors = FormErrors::new(&["name", "password", "role"]);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        ctx.clear();
        errors.clear();
        let r = Role::parse(&role.get_untracked()).unwrap_or(Role::Viewer);
        let call = create_user(name.get_untracked().trim().to_string(), password.get_untracked(), r);
        create.run(call, move |answer| match answer {
            Ok(user) => {
                ctx.message.set(Some(format!("Created {} ({}).", user.name, user.role.as_str())));
                users.update(|u| u.push(user));
                name.set(String::new());
                password.set(String::new());
            }
            Err(e) if e.field_errors().is_empty() => ctx.error.set(Some(error_text(&e))),
            Err(e) => errors.show(&e),
        });
    };
    view! {
        <form class="card inline-form" on:submit=on_submit>
            <div class="field">
                <label for="new-user-name">"Name"</label>
                <input
                    id="new-user-name"
                    type="text"
                    autocomplete="off"
                    required
                    aria-invalid=errors.invalid("name")
                    aria-describedby=errors.described("name", "new-user-name")
                    bind:value=name
                />
                <FieldMessage errors field="name" input="new-user-name" />
            </div>
            <div class="field">
                <label for="new-user-password">"Initial password (at least 12 characters)"</label>
                <input
                    id="new-user-password"
                    type="password"
                    autocomplete="new-password"
                    required
                    aria-invalid=errors.invalid("password")
                    aria-describedby=errors.described("password", "new-user-password")
                    bind:value=password
                />
                <FieldMessage errors field="password" input="new-user-password" />
            </div>
            <div class="field">
                <label for="new-user-role">"Role"</label>
                <select id="new-user-role" aria-invalid=errors.invalid("role") prop:value=move || role.get() on:change=move |ev| role.set(event_target_value(&ev))>
                    {role_options(Role::Viewer)}
                </select>
                <FieldMessage errors field="role" input="new-user-role" />
            </div>
            {move || errors.general().map(|g| view! { <p class="error" role="alert">{g}</p> }.into_any())}
            <button id="new-user-submit" type="submit" disabled=move || create.pending()>"Create user"</button>
        </form>
    }
    .into_any()
}

#[component]
fn UserRow(user: UserView, ctx: Feedback) -> impl IntoView {
    let id = user.id;
    let name = user.name.clone();
    let initial_role = user.role;
    let created = short_time(&user.created_at);
    let u = RwSignal::new(user);
    let resetting = RwSignal::new(false);
    let new_password = RwSignal::new(String::new());
    let apply = move |r: Result<UserView, crate::AppError>, what: &'static str| match r {
        Ok(v) => {
            ctx.message.set(Some(format!("{}: {what}.", v.name)));
            let _ = u.try_set(v);
        }
        Err(e) => {
            ctx.error.set(Some(error_text(&e)));
            // Show the stored role again after a refusal.
            u.update(|_| {});
        }
    };
    let (change_role, toggle, reset) = (Task::new(), Task::new(), Task::new());
    let on_reset = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        ctx.clear();
        reset.run(reset_password(id, new_password.get_untracked()), move |answer| match answer {
            Ok(()) => {
                resetting.set(false);
                new_password.set(String::new());
                ctx.message.set(Some(format!("{}: password reset.", u.get_untracked().name)));
            }
            Err(e) => ctx.error.set(Some(error_text(&e))),
        });
    };
    let role_id = format!("role-{id}");
    let pw_id = format!("new-password-{id}");
    view! {
        <tr data-user=name.clone() class:disabled=move || u.get().disabled>
            <td>{name.clone()}</td>
            <td>
                <label class="visually-hidden" for=role_id.clone()>{format!("Role of {name}")}</label>
                <select
                    id=role_id
                    class="role"
                    prop:value=move || u.get().role.as_str()
                    on:change=move |ev| {
                        ctx.clear();
                        if let Some(r) = Role::parse(&event_target_value(&ev)) {
                            change_role.run(set_user_role(id, r), move |a| apply(a, "role changed"));
                        }
                    }
                >
                    {role_options(initial_role)}
                </select>
            </td>
            <td class="state">{move || if u.get().disabled { "disabled" } else { "active" }}</td>
            <td class="time">{created}</td>
            <td class="row-actions">
                <button type="button" class="toggle-disabled secondary" on:click=move |_| {
                    ctx.clear();
                    toggle.run(set_user_disabled(id, !u.get_untracked().disabled), move |a| apply(a, "updated"));
                }>{move || if u.get().disabled { "Enable" } else { "Disable" }}</button>
                <button type="button" class="reset-password secondary" on:click=move |_| resetting.update(|r| *r = !*r)>
                    "Reset password"
                </button>
                {move || resetting.get().then(|| view! {
                    <form class="inline-form reset" on:submit=on_reset>
                        <label class="visually-hidden" for=pw_id.clone()>"New password"</label>
                        <input id=pw_id.clone() class="new-password" type="password" autocomplete="new-password" placeholder="New password" bind:value=new_password />
                        <button type="submit" class="reset-confirm">"Set password"</button>
                    </form>
                }.into_any())}
            </td>
        </tr>
    }
    .into_any()
}

fn users_head() -> AnyView {
    view! {
        <thead>
            <tr>
                <th scope="col">"Name"</th>
                <th scope="col">"Role"</th>
                <th scope="col">"State"</th>
                <th scope="col">"Created"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr>
        </thead>
    }
    .into_any()
}

#[component]
fn UserRows(users: RwSignal<Vec<UserView>>, ctx: Feedback) -> impl IntoView {
    view! {
        <tbody>
            <For each=move || users.get() key=|u| u.id let:user>
                <UserRow user ctx />
            </For>
        </tbody>
    }
    .into_any()
}
