//! The status page: Slipway's version, the database state and the Docker
//! engine, rendered on the server and refreshable once hydrated.

use leptos::prelude::*;

use crate::{
    api::check_status,
    components::{format::short_time, resource, SignInPrompt},
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
        </section>
    }
    .into_any()
}

#[component]
fn StatusTable(status: SystemStatus) -> impl IntoView {
    let db = status.database;
    let schema = match db.migrations_known {
        Some(known) if db.migrations_applied < known => {
            format!("{} of {known} migrations applied", db.migrations_applied)
        }
        _ => format!("up to date ({} migrations)", db.migrations_applied),
    };
    let database = format!("{} · schema {schema}", db.engine);

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
            <dt>"Edge router"</dt>
            <dd id="status-edge">{status.edge_addr}</dd>
            <dt>"Services answer on"</dt>
            <dd id="status-public-url" class="mono">{status.public_url}</dd>
            <dt>"Checked at"</dt>
            <dd>
                <time id="status-checked-at" datetime=status.checked_at.clone()>
                    {format!("{} UTC", short_time(&status.checked_at))}
                </time>
            </dd>
        </dl>
    }
    .into_any()
}
