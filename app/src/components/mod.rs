//! Small pieces shared by the pages: the signed-in caller, the sign-in
//! prompt, error and status display, formatting, ANSI logs, browser helpers.

use leptos::prelude::*;

use crate::{error::AppError, wire::Caller};

pub mod ansi;
pub mod browser;
pub mod deploys;
pub mod format;

/// The caller as `whoami` answered for this page load (provided by `App`).
#[derive(Clone, Copy)]
pub struct Session(pub Resource<Result<Caller, AppError>>);

impl Session {
    /// The caller; anonymous when the answer was an error.
    pub async fn caller(self) -> Caller {
        self.0.await.unwrap_or(Caller::Anonymous)
    }
}

/// The session provided by `App`.
pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// What a signed-out visitor sees instead of data.
#[component]
pub fn SignInPrompt() -> impl IntoView {
    view! {
        <section class="card sign-in-prompt">
            <h1>"Sign in to continue"</h1>
            <p>"This page is only for signed-in users. " <a id="sign-in-link" href="/login">"Sign in"</a></p>
        </section>
    }
}

/// The sign-in prompt for a signed-out caller, else `None`.
pub fn require_user(caller: &Caller) -> Option<AnyView> {
    matches!(caller, Caller::Anonymous).then(|| view! { <SignInPrompt /> }.into_any())
}

/// An error answer as a page shows it: the sign-in prompt when the caller is
/// not signed in, the message otherwise.
pub fn error_view(e: AppError) -> AnyView {
    match e {
        AppError::Unauthenticated => view! { <SignInPrompt /> }.into_any(),
        e => view! {
            <section class="card">
                <p class="error" role="alert">{e.to_string()}</p>
            </section>
        }
        .into_any(),
    }
}

/// The text shown for an error next to a form or action.
pub fn error_text(e: &AppError) -> String {
    match e {
        AppError::InvalidField { message, .. } => message.clone(),
        AppError::RateLimited(m) => m.clone(),
        e => e.to_string(),
    }
}

/// A build or deployment status as a coloured badge.
#[component]
pub fn StatusBadge(#[prop(into)] status: String, #[prop(optional, into)] class: String) -> impl IntoView {
    let class = format!("{} {class}", badge_class(&status));
    view! { <span class=class>{status}</span> }
}

/// The classes of a status badge: `badge badge-good|bad|busy|neutral`.
pub fn badge_class(status: &str) -> &'static str {
    match status {
        "succeeded" | "live" => "badge badge-good",
        "failed" | "timed_out" | "interrupted" => "badge badge-bad",
        "queued" | "running" | "pending" | "starting" => "badge badge-busy",
        _ => "badge badge-neutral",
    }
}

/// "Loading…" placeholder for a Suspense fallback.
pub fn loading() -> impl IntoView {
    view! { <p class="muted loading">"Loading…"</p> }
}
