//! `/certificates`: the certificates the edge's HTTPS listener serves, with
//! their domains and expiry, flagged 14 days before it. Everyone signed in
//! sees them (never a key); admins upload a PEM chain and key, and delete
//! uploads. The watched directory's certificates are listed read-only.

use leptos::prelude::*;

use crate::{
    api::certificates::{delete_certificate, list_certificates, upload_certificate},
    components::{
        error_text, error_view,
        form::{FieldMessage, FormErrors},
        format::short_time,
        loading, require_user, resource, use_session, Task,
    },
    wire::{
        CertificateForm, CertificateSource, CertificateState, CertificateView, Role, EXPIRY_WARNING_DAYS,
    },
};

#[component]
pub fn CertificatesPage() -> impl IntoView {
    let session = use_session();
    let list = resource(|| (), |_| list_certificates());
    view! {
        <Suspense fallback=loading>
            {move || Suspend::new(async move {
                let caller = session.caller().await;
                if let Some(prompt) = require_user(&caller) {
                    return prompt;
                }
                match list.await {
                    Err(e) => error_view(e),
                    Ok(list) => view! { <Certificates list admin=caller.may(Role::Admin) /> }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

/// "3 certificates expire within 14 days", when any do.
fn warning(list: &[CertificateView]) -> Option<String> {
    let soon = list.iter().filter(|c| c.state == CertificateState::Expiring).count();
    let gone = list.iter().filter(|c| c.state == CertificateState::Expired).count();
    let mut parts = Vec::new();
    match soon {
        0 => {}
        1 => parts.push(format!("1 certificate expires within {EXPIRY_WARNING_DAYS} days")),
        n => parts.push(format!("{n} certificates expire within {EXPIRY_WARNING_DAYS} days")),
    }
    match gone {
        0 => {}
        1 => parts.push("1 certificate has expired".to_string()),
        n => parts.push(format!("{n} certificates have expired")),
    }
    (!parts.is_empty())
        .then(|| format!("{}: renew them, or clients will refuse these domains.", parts.join("; ")))
}

#[component]
fn Certificates(list: Vec<CertificateView>, admin: bool) -> impl IntoView {
    let certs = RwSignal::new(list);
    let error = RwSignal::new(None::<String>);
    view! {
        <div class="page-head">
            <h1>"Certificates"</h1>
        </div>
        {move || certs.with(|l| warning(l)).map(|w| view! {
            <p id="certificates-warning" class="notice notice-warn" role="status">{w}</p>
        })}
        <section class="card">
            <p class="muted">
                "The HTTPS listener (SLIPWAY_EDGE_TLS_ADDR) picks a certificate by the domain a client asks for; "
                "a wildcard covers one label. Files in SLIPWAY_EDGE_CERT_DIR are renewed on disk."
            </p>
            <div class="table-wrap" data-empty="No certificates yet.">
                <table id="certificates">
                    <thead>
                        <tr>
                            <th>"Domains"</th>
                            <th>"Source"</th>
                            <th>"Expires"</th>
                            <th>"State"</th>
                            <th>"SHA-256"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        // Keyed: a change to one row keeps the others (and
                        // their pending deletes) as they are.
                        <For each=move || certs.get() key=|c| (c.id, c.fingerprint.clone()) let:cert>
                            <CertificateRow cert certs error admin />
                        </For>
                    </tbody>
                </table>
            </div>
            {move || error.get().map(|e| view! { <p id="certificates-error" class="error" role="alert">{e}</p> })}
        </section>
        {admin.then(|| view! { <Upload certs /> })}
    }
    .into_any()
}

fn state_badge(cert: &CertificateView) -> (String, &'static str) {
    match cert.state {
        CertificateState::Valid => (format!("valid, {} days left", cert.days_left), "badge badge-good"),
        CertificateState::Expiring => (format!("expires in {} days", cert.days_left), "badge badge-busy"),
        CertificateState::Expired => ("expired or not yet valid".to_string(), "badge badge-bad"),
    }
}

#[component]
fn CertificateRow(
    cert: CertificateView,
    certs: RwSignal<Vec<CertificateView>>,
    error: RwSignal<Option<String>>,
    admin: bool,
) -> impl IntoView {
    let remove = Task::new();
    let id = cert.id;
    let on_delete = move |_| {
        let Some(id) = id else { return };
        remove.run(delete_certificate(id), move |answer| match answer {
            Ok(()) => certs.update(|all| all.retain(|c| c.id != Some(id))),
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    let (state, class) = state_badge(&cert);
    let source = match cert.source {
        CertificateSource::Upload => format!("uploaded by {}", cert.uploaded_by.clone().unwrap_or_default()),
        CertificateSource::Directory => "directory".to_string(),
    };
    let deletable = admin && id.is_some();
    view! {
        <tr data-certificate-id=id.map(|i| i.to_string()).unwrap_or_default()>
            <td class="names">{cert.names.join(", ")}</td>
            <td>{source}</td>
            <td>{short_time(&cert.not_after)}</td>
            <td><span class=class>{state}</span></td>
            <td><code title=cert.fingerprint.clone()>{cert.fingerprint.chars().take(16).collect::<String>()}"…"</code></td>
            <td>
                {deletable.then(|| view! {
                    <button class="small danger" disabled=move || remove.pending() on:click=on_delete>"Delete"</button>
                })}
            </td>
        </tr>
    }
}

#[component]
fn Upload(certs: RwSignal<Vec<CertificateView>>) -> impl IntoView {
    let chain = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let errors = FormErrors::new(&["chain_pem", "key_pem"]);
    let upload = Task::new();
    let done = RwSignal::new(None::<String>);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        done.set(None);
        let form = CertificateForm { chain_pem: chain.get_untracked(), key_pem: key.get_untracked() };
        // The list is read again rather than patched here: the server
        // decides which uploads the new one replaced.
        let call = async move {
            let view = upload_certificate(form).await?;
            Ok::<_, crate::AppError>((view, list_certificates().await?))
        };
        upload.run(call, move |answer| match answer {
            Ok((view, list)) => {
                done.set(Some(format!("Serving {}.", view.names.join(", "))));
                certs.set(list);
                chain.set(String::new());
                key.set(String::new());
            }
            Err(e) => errors.show(&e),
        });
    };
    let area = move |id: &'static str, field: &'static str, label: &'static str, value: RwSignal<String>| {
        view! {
            <div class="field">
                <label for=id>{label}</label>
                <textarea
                    id=id
                    rows="6"
                    spellcheck="false"
                    autocomplete="off"
                    aria-invalid=errors.invalid(field)
                    aria-describedby=errors.described(field, id)
                    bind:value=value
                ></textarea>
                <FieldMessage errors field input=id />
            </div>
        }
    };
    view! {
        <section class="card narrow">
            <h2>"Upload a certificate"</h2>
            <p class="muted">
                "It is served for the domains it names, and replaces the uploads whose domains it covers. "
                "The key is encrypted at rest and never shown again."
            </p>
            <form id="certificate-form" on:submit=on_submit novalidate>
                {area("certificate-chain", "chain_pem", "Certificate chain (PEM, fullchain.pem)", chain)}
                {area("certificate-key", "key_pem", "Private key (PEM, privkey.pem)", key)}
                {move || errors.general().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <button id="certificate-upload" type="submit" disabled=move || upload.pending()>"Upload"</button>
            </form>
            {move || done.get().map(|d| view! { <p id="certificate-uploaded" class="notice" role="status">{d}</p> })}
        </section>
    }
}
