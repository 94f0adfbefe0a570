//! The service page's runtime panel: the live container's state, uptime,
//! restarts, health as last probed, CPU and memory with a 15-minute chart,
//! the operator's actions (deployers) and their history. Read in the
//! browser and refreshed every 5 s while the page is open.

use std::time::Duration;

use leptos::prelude::*;

use crate::{
    api::runtime::{service_action, service_runtime},
    components::{error_text, format::short_time, Task},
    wire::{RuntimeView, UsagePoint},
};

/// How often the panel reads the runtime again.
const REFRESH: Duration = Duration::from_secs(5);

/// `1234` tenths → `123.4 %`.
fn percent(tenths: u32) -> String {
    format!("{}.{} %", tenths / 10, tenths % 10)
}

/// Bytes as MiB with one decimal, integer arithmetic only.
pub fn mib(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10) / (1024 * 1024);
    format!("{}.{} MiB", tenths / 10, tenths % 10)
}

/// `3725` → `1 h 2 min`.
fn uptime(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The state in words, and its badge class.
fn state_text(v: &RuntimeView) -> (String, &'static str) {
    if v.deployment_id.is_none() {
        return ("not deployed".into(), "badge badge-neutral");
    }
    if v.stopped {
        return ("stopped".into(), "badge badge-busy");
    }
    match &v.state {
        None => ("container missing".into(), "badge badge-bad"),
        Some(s) => match s.status.as_str() {
            "running" => ("running".into(), "badge badge-good"),
            "oom_killed" => ("killed: out of memory".into(), "badge badge-bad"),
            "exited" => (format!("exited (code {})", s.exit_code.unwrap_or(-1)), "badge badge-bad"),
            other => (other.to_string(), "badge badge-busy"),
        },
    }
}

/// An SVG polyline of one series, scaled to its own maximum.
fn spark(points: &[UsagePoint], value: fn(&UsagePoint) -> u64, label: &'static str) -> impl IntoView {
    let max = points.iter().map(value).max().unwrap_or(0).max(1);
    let n = points.len().max(2) as u64 - 1;
    let coords: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{},{}", i as u64 * 300 / n, 40 - value(p) * 38 / max))
        .collect();
    view! {
        <svg class="spark" viewBox="0 0 300 40" role="img" aria-label=label preserveAspectRatio="none">
            <polyline points=coords.join(" ") fill="none" stroke="currentColor" stroke-width="1.5" />
        </svg>
    }
}

#[component]
pub fn RuntimePanel(service_id: i64, deployer: bool) -> impl IntoView {
    let view_state = RwSignal::new(None::<RuntimeView>);
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<String>);
    let (read, act) = (Task::new(), Task::new());
    let load = move || {
        read.run(service_runtime(service_id), move |answer| match answer {
            Ok(v) => {
                let _ = view_state.try_set(Some(v));
                let _ = error.try_set(None);
            }
            Err(e) => {
                let _ = error.try_set(Some(error_text(&e)));
            }
        })
    };
    Effect::new(move |_| {
        load();
        if let Ok(handle) = set_interval_with_handle(load, REFRESH) {
            on_cleanup(move || handle.clear());
        }
    });
    let run = move |action: &'static str| {
        if matches!(action, "stop" | "restart")
            && !crate::components::browser::confirm(&format!("{action} the service?"))
        {
            return;
        }
        notice.set(None);
        act.run(service_action(service_id, action.to_string()), move |answer| match answer {
            Ok(a) => {
                let _ = notice.try_set(Some(format!("{} started.", a.action)));
                load();
            }
            Err(e) => {
                let _ = notice.try_set(Some(error_text(&e)));
            }
        });
    };
    let body = move || {
        let Some(v) = view_state.get() else {
            return view! { <p class="muted">"Reading the container…"</p> }.into_any();
        };
        let (state, class) = state_text(&v);
        let s = v.state.clone().unwrap_or_default();
        let probe = v.probe.clone().map(|p| {
            let when = short_time(&p.at);
            if p.ok {
                format!("passed ({when})")
            } else {
                format!("failing: {} ({when})", p.detail)
            }
        });
        let memory = match (v.memory_bytes, v.memory_limit_bytes) {
            (Some(m), limit) if limit > 0 => format!("{} of {}", mib(m), mib(limit)),
            (Some(m), _) => mib(m),
            _ => "–".into(),
        };
        let running = v.deployment_id.is_some() && !v.stopped;
        let has_live = v.deployment_id.is_some();
        let actions = v.actions.clone();
        view! {
            {v.settings_changed.then(|| view! {
                <p id="settings-changed" class="notice notice-warn">
                    "Settings changed since the live deployment: redeploy to apply"
                </p>
            })}
            <dl class="facts" id="runtime-facts">
                <dt>"State"</dt><dd><span id="runtime-state" class=class>{state}</span></dd>
                <dt>"Uptime"</dt><dd>{s.uptime_secs.map(uptime).unwrap_or_else(|| "–".into())}</dd>
                <dt>"Restarts"</dt><dd>{s.restart_count}</dd>
                <dt>"Health"</dt><dd>{probe.unwrap_or_else(|| "not probed yet".into())}</dd>
                <dt>"CPU"</dt><dd id="runtime-cpu">{v.cpu_tenths.map(percent).unwrap_or_else(|| "–".into())}</dd>
                <dt>"Memory"</dt><dd id="runtime-memory">{memory}</dd>
            </dl>
            {(v.points.len() > 1).then(|| view! {
                <div class="sparks">
                    <figure>{spark(&v.points, |p| u64::from(p.cpu_tenths), "CPU, last 15 minutes")}<figcaption>"CPU, 15 min"</figcaption></figure>
                    <figure>{spark(&v.points, |p| p.memory_bytes, "Memory, last 15 minutes")}<figcaption>"Memory, 15 min"</figcaption></figure>
                </div>
            })}
            {(deployer && has_live).then(|| view! {
                <div class="actions">
                    {running.then(|| view! {
                        <button id="restart" type="button" on:click=move |_| run("restart")>"Restart"</button>
                        <button id="stop" type="button" class="danger" on:click=move |_| run("stop")>"Stop"</button>
                    })}
                    {(!running).then(|| view! {
                        <button id="start" type="button" on:click=move |_| run("start")>"Start"</button>
                    })}
                    <button id="redeploy" type="button" on:click=move |_| run("redeploy")>"Redeploy current"</button>
                </div>
            })}
            {(!actions.is_empty()).then(|| view! {
                <ul class="plain" id="runtime-actions">
                    {actions.into_iter().map(|a| view! {
                        <li>{format!("{} by {} · {} · deployment #{}", a.kind, a.actor.unwrap_or_default(), short_time(&a.at), a.deployment_id)}</li>
                    }).collect_view()}
                </ul>
            })}
        }
        .into_any()
    };
    view! {
        {body}
        {move || notice.get().map(|n| view! { <p id="runtime-message" class="notice" role="status">{n}</p> })}
        {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_plainly() {
        assert_eq!(percent(1234), "123.4 %");
        assert_eq!(percent(5), "0.5 %");
        assert_eq!(mib(512 * 1024 * 1024), "512.0 MiB");
        assert_eq!(mib(1_572_864), "1.5 MiB");
        assert_eq!(uptime(59), "59 s");
        assert_eq!(uptime(3725), "1 h 2 min");
        assert_eq!(uptime(90_000), "1 d 1 h");
    }
}
