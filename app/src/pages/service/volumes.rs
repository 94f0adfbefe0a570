//! The service page's named volumes (issue 18): name, mount path, size;
//! admins may delete one that no container uses (its data goes).

use leptos::prelude::*;

use crate::{
    api::runtime::{delete_volume, service_volumes},
    components::{error_text, Task},
    wire::VolumeView,
};

fn size_text(bytes: Option<i64>) -> String {
    match bytes {
        None => "–".into(),
        Some(b) if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        Some(b) => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

#[component]
pub fn VolumesSection(service_id: i64, admin: bool) -> impl IntoView {
    let list = RwSignal::new(None::<Vec<VolumeView>>);
    let error = RwSignal::new(None::<String>);
    let task = Task::new();
    let load = move || {
        task.run(service_volumes(service_id), move |answer| match answer {
            Ok(v) => list.set(Some(v)),
            Err(e) => error.set(Some(error_text(&e))),
        })
    };
    // In the browser only: the engine measures the sizes.
    Effect::new(move |_| load());
    let remove = move |name: String| {
        if !crate::components::browser::confirm(&format!("Delete the volume {name} and all its data?")) {
            return;
        }
        task.run(delete_volume(service_id, name), move |answer| match answer {
            Ok(()) => {
                error.set(None);
                load();
            }
            Err(e) => error.set(Some(error_text(&e))),
        });
    };
    view! {
        <section class="card" id="volumes" aria-labelledby="volumes-title">
            <h2 id="volumes-title">"Volumes"</h2>
            <p class="muted">"Named volumes outlive every deploy, rollback and restart; a rollback keeps their data as it is."</p>
            {move || match list.get() {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(v) if v.is_empty() => view! { <p class="muted" id="volumes-none">"No volumes."</p> }.into_any(),
                Some(v) => view! {
                    <table class="history">
                        <thead><tr><th>"Name"</th><th>"Mounted at"</th><th>"Size"</th><th></th></tr></thead>
                        <tbody>
                            {v.into_iter().map(|vol| {
                                let name = vol.name.clone();
                                view! {
                                    <tr class="volume" data-volume=vol.name.clone()>
                                        <td class="mono">{vol.name.clone()}</td>
                                        <td class="mono">{vol.path.clone().unwrap_or_else(|| "(no longer declared)".into())}</td>
                                        <td class="size">{if vol.exists { size_text(vol.size_bytes) } else { "not created yet".into() }}</td>
                                        <td>{(admin && vol.exists).then(|| view! {
                                            <button type="button" class="danger secondary delete-volume" on:click=move |_| remove(name.clone())>"Delete"</button>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            }}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
