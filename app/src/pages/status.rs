//! The status page: Slipway's version, the database state and the Docker
//! engine, rendered on the server and refreshable once hydrated.

use leptos::prelude::*;

use crate::{
    api::check_status,
    components::{resource, SignInPrompt},
    error::AppError,
    wire::{DockerStatus, SystemStatus},
};

#[component]
pub fn StatusPage() -> impl IntoView {
    let refreshes = RwSignal::new(0u32);
    let status = resource(move || refreshes.get(), |_| check_status());
    // Effects run only in the browser, so this flips once the WASM hydrated.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <section class="card" id="status" data-hydrated=move || hydrated.get().to_string()>
            <div class="card-head">
                <h1>"System status"</h1>
                <button
                    id="refresh-status"
                    type="button"
                    on:click=move |_| refreshes.update(|n| *n += 1)
                >
                    "Check again"
                </button>
            </div>
            <Transition fallback=|| view! { <p>"Checking…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(s) => view! { <StatusTable status=s /> }.into_any(),
                        Err(AppError::Unauthenticated) => view! { <SignInPrompt /> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <p class="muted">
                "Checks from this page: " <span id="refresh-count">{move || refreshes.get()}</span>
            </p>
        </section>
    }
    .into_any()
}

#[component]
fn StatusTable(status: SystemStatus) -> impl IntoView {
    let db = status.database;
    let database = format!(
        "{} · {} migrations applied{}",
        db.engine,
        db.migrations_applied,
        db.latest_migration.map(|m| format!(" (latest: {m})")).unwrap_or_default()
    );
    let (docker_ok, docker) = match status.docker {
        DockerStatus::Reachable { version, api_version, platform } => {
            (true, format!("Docker Engine {version} (API {api_version}, {platform})"))
        }
        DockerStatus::Unreachable { reason } => (false, format!("Docker unreachable: {reason}")),
    };
    view! {
        <dl class="status">
            <dt>"Slipway"</dt>
            <dd id="status-version">{status.version}</dd>
            <dt>"Database"</dt>
            <dd id="status-database">{database}</dd>
            <dt>"Docker"</dt>
            <dd id="status-docker" class=if docker_ok { "ok" } else { "bad" }>{docker}</dd>
            <dt>"Checked at"</dt>
            <dd id="status-checked-at">{status.checked_at}</dd>
        </dl>
    }
    .into_any()
}
