//! The live log stream (browser only): an `EventSource` on
//! `/api/v1/builds/{id}/log/stream?after=<last seq rendered>`. `line` events
//! are batched and appended (duplicates dropped by `seq`); `end` closes the
//! stream. The browser reconnects by itself and sends `Last-Event-ID`.

use std::time::Duration;

use leptos::{
    prelude::*,
    wasm_bindgen::{closure::Closure, JsCast},
    web_sys::{Event, EventSource, MessageEvent},
};

use super::log::LogState;
use crate::wire::LogLineView;

type Listener<E> = Closure<dyn FnMut(E)>;

struct Stream {
    source: EventSource,
    _listeners: (Listener<MessageEvent>, Listener<MessageEvent>, Listener<Event>),
}

/// Lines received but not yet rendered, and whether a flush is scheduled.
#[derive(Clone, Copy)]
struct Pending {
    lines: StoredValue<Vec<LogLineView>>,
    scheduled: StoredValue<bool>,
}

impl Pending {
    fn flush(&self, state: LogState) {
        self.scheduled.set_value(false);
        let lines = std::mem::take(&mut *self.lines.write_value());
        state.append(lines);
    }

    fn push(&self, state: LogState, line: LogLineView) {
        self.lines.update_value(|l| l.push(line));
        if !self.scheduled.get_value() {
            self.scheduled.set_value(true);
            let this = *self;
            set_timeout(move || this.flush(state), Duration::from_millis(30));
        }
    }
}

pub fn open(build_id: i64, state: LogState, follow_live: bool, on_end: Callback<()>) {
    let stream = StoredValue::new_local(None::<Stream>);
    on_cleanup(move || {
        let _ = stream.try_update_value(|s| {
            if let Some(s) = s.take() {
                s.source.close();
            }
        });
    });
    if !follow_live {
        return;
    }
    let pending = Pending { lines: StoredValue::new(Vec::new()), scheduled: StoredValue::new(false) };
    Effect::new(move |_| {
        let after = state.last_seq.get_value();
        let url = format!("/api/v1/builds/{build_id}/log/stream?after={after}");
        let Ok(source) = EventSource::new(&url) else {
            state
                .note
                .set(Some("The live log is not available in this browser; reload to see new lines.".into()));
            return;
        };
        let line: Listener<MessageEvent> = Closure::wrap(Box::new(move |ev: MessageEvent| {
            // `from_slice`, like the server functions' answers: one
            // deserializer for `LogLineView` in the bundle instead of two.
            let parsed = ev
                .data()
                .as_string()
                .and_then(|t| leptos::serde_json::from_slice::<LogLineView>(t.as_bytes()).ok());
            if let Some(l) = parsed {
                pending.push(state, l);
            }
        }));
        let end: Listener<MessageEvent> = Closure::wrap(Box::new(move |_ev: MessageEvent| {
            stream.with_value(|s| {
                if let Some(s) = s {
                    s.source.close();
                }
            });
            pending.flush(state);
            on_end.run(());
        }));
        let error: Listener<Event> = Closure::wrap(Box::new(move |_ev: Event| {
            let closed = stream
                .with_value(|s| s.as_ref().is_some_and(|s| s.source.ready_state() == EventSource::CLOSED));
            if closed {
                state.note.set(Some("The live log stopped; reload the page to see new lines.".into()));
            }
        }));
        let _ = source.add_event_listener_with_callback("line", line.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("end", end.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("error", error.as_ref().unchecked_ref());
        stream.set_value(Some(Stream { source, _listeners: (line, end, error) }));
    });
}
