//! Slipway's user interface: routes, pages, components, the wire types shared
//! by browser and server, the `#[server]` functions and the `Backend` port
//! they call. No database, Docker or domain rules live here.

pub mod api;
#[cfg(feature = "ssr")]
pub mod backend;
pub mod components;
pub mod error;
pub mod pages;
pub mod wire;

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use crate::{
    components::{browser, resource, Session},
    wire::{Caller, Role},
};
pub use error::AppError;

/// The HTML document the server renders around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                // Static head tags live here, in the server-only shell, rather
                // than as leptos_meta components in `App`: the browser bundle
                // then carries no code for them.
                <link rel="stylesheet" id="leptos" href="/pkg/slipway.css" />
                <title>"Slipway"</title>
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
    .into_any()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = Session(resource(|| (), |_| api::whoami()));
    provide_context(session);
    // Effects run only in the browser. The flag is set on the next task, after
    // the Suspense boundaries hydrated from the serialized resources.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| {
        set_timeout(move || hydrated.set(true), Duration::ZERO);
    });

    view! {
        <Router>
            <TopBar />
            <main id="main" data-hydrated=move || hydrated.get().to_string()>
                <Routes fallback=pages::not_found::NotFound>
                    <Route path=path!("") view=pages::overview::OverviewPage ssr=SsrMode::Async />
                    <Route path=path!("status") view=pages::status::StatusPage ssr=SsrMode::Async />
                    <Route path=path!("login") view=pages::login::LoginPage ssr=SsrMode::Async />
                    <Route path=path!("setup") view=pages::setup::SetupPage ssr=SsrMode::Async />
                    <Route path=path!("account") view=pages::account::AccountPage ssr=SsrMode::Async />
                    <Route
                        path=path!("projects/:id/services/new")
                        view=pages::new_service::NewServicePage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("services/:id") view=pages::service::ServicePage ssr=SsrMode::Async />
                    <Route path=path!("builds/:id") view=pages::build::BuildPage ssr=SsrMode::Async />
                    <Route path=path!("projects/:id") view=pages::project::ProjectPage ssr=SsrMode::Async />
                    <Route path=path!("deployments/:id") view=pages::deployment::DeploymentPage ssr=SsrMode::Async />
                    <Route path=path!("admin/users") view=pages::users::UsersPage ssr=SsrMode::Async />
                    <Route path=path!("admin/audit") view=pages::audit::AuditPage ssr=SsrMode::Async />
                    <Route path=path!("account/tokens") view=pages::tokens::TokensPage ssr=SsrMode::Async />
                    <Route path=path!("certificates") view=pages::certificates::CertificatesPage ssr=SsrMode::Async />
                    <Route path=path!("projects/:id/registry") view=pages::registry::RegistryPage ssr=SsrMode::Async />
                    <Route
                        path=path!("projects/:id/notifications")
                        view=pages::notifications::NotificationsPage
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
    .into_any()
}

/// Navigation, the signed-in user and sign-out.
#[component]
fn TopBar() -> impl IntoView {
    let session = components::use_session();
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Slipway"</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let caller = session.caller().await;
                    view! { <TopNav caller /> }
                })}
            </Suspense>
        </header>
    }
    .into_any()
}

#[component]
fn TopNav(caller: Caller) -> impl IntoView {
    let admin = caller.may(Role::Admin);
    let user = match &caller {
        Caller::User { name, role, .. } => Some(format!("{name} ({})", role.as_str())),
        Caller::Anonymous => None,
    };
    let signed_in = user.is_some();
    let logout = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::logout().await;
            browser::go("/login");
        });
    };
    view! {
        <nav class="nav" aria-label="Main">
            <a id="nav-projects" href="/">"Projects"</a>
            {admin.then(|| view! { <a id="nav-users" href="/admin/users">"Users"</a> }.into_any())}
            {admin.then(|| view! { <a id="nav-audit" href="/admin/audit">"Audit"</a> }.into_any())}
            {signed_in.then(|| view! { <a id="nav-certificates" href="/certificates">"Certificates"</a> }.into_any())}
            {signed_in.then(|| view! { <a id="nav-account" href="/account">"Account"</a> }.into_any())}
            <a id="nav-status" href="/status">"Status"</a>
        </nav>
        <div class="user">
            {match user {
                Some(who) => view! {
                    <span id="whoami">{who}</span>
                    <button id="logout" type="button" class="secondary" on:click=logout>"Sign out"</button>
                }
                    .into_any(),
                None => view! { <a id="nav-login" href="/login">"Sign in"</a> }.into_any(),
            }}
        </div>
    }
    .into_any()
}
