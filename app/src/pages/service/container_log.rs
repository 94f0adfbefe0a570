//! The service page's Logs tab: the live container's own log over the
//! API's event stream (`/api/v1/services/{id}/logs?follow=true&tail=200`),
//! ANSI colours rendered, the last 2,000 lines kept, following the tail.
//! Opened only when the tab is shown; closed when it is hidden or the page
//! goes. When the stream ends it says why (stopped, replaced).

use leptos::{html::Div, prelude::*};

use crate::components::{ansi, html};

#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
struct Line {
    stream: String,
    ts: String,
    text: String,
}

#[component]
pub fn LogsTab(service_id: i64) -> impl IntoView {
    let lines = RwSignal::new(Vec::<(usize, Line)>::new());
    let note = RwSignal::new(None::<String>);
    let since = RwSignal::new(String::new());
    let generation = RwSignal::new(0u32);
    let node = NodeRef::<Div>::new();
    #[cfg(feature = "hydrate")]
    live::open(service_id, lines, note, since, generation, node);
    #[cfg(not(feature = "hydrate"))]
    let _ = (service_id, since, generation, node);
    view! {
        <div class="inline-form">
            <div class="field">
                <label for="logs-since">"Since"</label>
                <select id="logs-since" on:change=move |ev| {
                    since.set(event_target_value(&ev));
                    generation.update(|g| *g += 1);
                }>
                    <option value="">"the last 200 lines"</option>
                    <option value="5m">"5 minutes"</option>
                    <option value="1h">"1 hour"</option>
                    <option value="1d">"1 day"</option>
                </select>
            </div>
            <button id="logs-reconnect" type="button" on:click=move |_| generation.update(|g| *g += 1)>
                "Reconnect"
            </button>
        </div>
        <div
            id="container-log"
            class="log"
            node_ref=node
            role="log"
            aria-live="polite"
            inner_html=move || lines.with(|all| markup(all))
        ></div>
        {move || note.get().map(|n| view! { <p id="logs-note" class="muted" role="status">{n}</p> })}
    }
}

/// The lines as markup (every value escaped, colours as spans), set with
/// `inner_html`: one string instead of a view per line and colour span.
fn markup(lines: &[(usize, Line)]) -> String {
    let mut out = String::with_capacity(lines.len() * 100);
    for (_, l) in lines {
        out.push_str(if l.stream == "stderr" {
            "<div class=\"log-line log-stderr\""
        } else {
            "<div class=\"log-line\""
        });
        out.push_str(" title=\"");
        html::attr(&mut out, &l.ts);
        out.push_str("\">");
        ansi::markup(&mut out, &l.text);
        out.push_str("</div>");
    }
    out
}

#[cfg(feature = "hydrate")]
mod live {
    use std::time::Duration;

    use leptos::{
        wasm_bindgen::{closure::Closure, JsCast},
        web_sys::{EventSource, MessageEvent},
    };

    use super::*;

    type Listener = Closure<dyn FnMut(MessageEvent)>;

    /// Lines kept on screen.
    const KEEP: usize = 2000;

    #[derive(serde::Deserialize)]
    struct End {
        reason: String,
    }

    pub fn open(
        service_id: i64,
        lines: RwSignal<Vec<(usize, Line)>>,
        note: RwSignal<Option<String>>,
        since: RwSignal<String>,
        generation: RwSignal<u32>,
        node: NodeRef<Div>,
    ) {
        let current = StoredValue::new_local(None::<(EventSource, [Listener; 3])>);
        let close = move || {
            let _ = current.try_update_value(|c| {
                if let Some((source, _)) = c.take() {
                    source.close();
                }
            });
        };
        on_cleanup(close);
        let pending = StoredValue::new(Vec::<Line>::new());
        let counter = StoredValue::new(0usize);
        let flush = move || {
            let fresh = std::mem::take(&mut *pending.write_value());
            if fresh.is_empty() {
                return;
            }
            let _ = lines.try_update(|all| {
                for line in fresh {
                    let id = counter.get_value();
                    counter.set_value(id + 1);
                    all.push((id, line));
                }
                let extra = all.len().saturating_sub(KEEP);
                all.drain(..extra);
            });
            set_timeout(
                move || {
                    if let Some(el) = node.get_untracked() {
                        el.set_scroll_top(el.scroll_height());
                    }
                },
                Duration::ZERO,
            );
        };
        Effect::new(move |_| {
            generation.track();
            close();
            lines.set(Vec::new());
            note.set(None);
            let since = since.get_untracked();
            let mut url = format!("/api/v1/services/{service_id}/logs?follow=true&tail=200");
            if !since.is_empty() {
                url = format!("{url}&since={since}");
            }
            let Ok(source) = EventSource::new(&url) else {
                note.set(Some("Live logs are not available in this browser.".into()));
                return;
            };
            let on_line: Listener = Closure::wrap(Box::new(move |ev: MessageEvent| {
                let parsed = ev
                    .data()
                    .as_string()
                    .and_then(|t| leptos::serde_json::from_slice::<Line>(t.as_bytes()).ok());
                if let Some(line) = parsed {
                    let first = pending.with_value(|p| p.is_empty());
                    pending.update_value(|p| p.push(line));
                    if first {
                        set_timeout(flush, Duration::from_millis(50));
                    }
                }
            }));
            let on_end: Listener = Closure::wrap(Box::new(move |ev: MessageEvent| {
                flush();
                let reason = ev
                    .data()
                    .as_string()
                    .and_then(|t| leptos::serde_json::from_slice::<End>(t.as_bytes()).ok())
                    .map_or_else(|| "the log ended".to_string(), |e| e.reason);
                note.set(Some(format!("The log stream ended: {reason}.")));
                close();
            }));
            // A refusal (nothing live, signed out) closes the source for good.
            let on_error: Listener = Closure::wrap(Box::new(move |_ev: MessageEvent| {
                let closed = current
                    .with_value(|c| c.as_ref().is_some_and(|(s, _)| s.ready_state() == EventSource::CLOSED));
                if closed {
                    note.set(Some("No log to show: the service has no running container.".into()));
                }
            }));
            let _ = source.add_event_listener_with_callback("line", on_line.as_ref().unchecked_ref());
            let _ = source.add_event_listener_with_callback("end", on_end.as_ref().unchecked_ref());
            let _ = source.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
            current.set_value(Some((source, [on_line, on_end, on_error])));
        });
    }
}
