//! The build log: stored lines rendered on the server, then (in the browser,
//! while the build is active) new lines from the SSE stream, each exactly
//! once. Follows the tail unless the reader scrolled up.

use std::sync::Arc;

use leptos::{html::Div, prelude::*};

use crate::{
    components::{ansi, html},
    wire::LogLineView,
};

/// Lines added together; the log is a list of these so an update re-renders
/// only the new chunk.
#[derive(Clone)]
pub struct Chunk {
    pub id: usize,
    pub lines: Arc<Vec<LogLineView>>,
}

/// The log's state, shared with the live stream.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub struct LogState {
    pub chunks: RwSignal<Vec<Chunk>>,
    pub last_seq: StoredValue<u64>,
    pub following: RwSignal<bool>,
    pub node: NodeRef<Div>,
    /// The stream ended or failed for good: a note for the reader.
    pub note: RwSignal<Option<String>>,
}

impl LogState {
    /// Appends the lines not seen yet (by `seq`), in order.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub fn append(&self, lines: Vec<LogLineView>) {
        let (fresh, last) = unseen(lines, self.last_seq.get_value());
        self.last_seq.set_value(last);
        if fresh.is_empty() {
            return;
        }
        let _ = self.chunks.try_update(|chunks| {
            let id = chunks.last().map(|c| c.id + 1).unwrap_or(0);
            chunks.push(Chunk { id, lines: Arc::new(fresh) });
        });
        if self.following.get_untracked() {
            let this = *self;
            set_timeout(move || this.scroll_to_end(), std::time::Duration::ZERO);
        }
    }

    pub fn scroll_to_end(&self) {
        if let Some(el) = self.node.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    }

    /// Following while the view is at the bottom (± 4 px).
    fn on_scroll(&self) {
        if let Some(el) = self.node.get_untracked() {
            let gap = el.scroll_height() - el.scroll_top() - el.client_height();
            self.following.set(gap <= 4);
        }
    }
}

#[component]
pub fn BuildLog(
    build_id: i64,
    lines: Vec<LogLineView>,
    /// Open the live stream (the build was active when the page was made).
    follow_live: bool,
    /// Called when the stream says the build ended.
    on_end: Callback<()>,
    /// Only this step's lines are shown (the others stay, hidden).
    filter: RwSignal<Option<String>>,
) -> impl IntoView {
    let last = lines.iter().map(|l| l.seq).max().unwrap_or(0);
    let state = LogState {
        chunks: RwSignal::new(vec![Chunk { id: 0, lines: Arc::new(lines) }]),
        last_seq: StoredValue::new(last),
        following: RwSignal::new(true),
        node: NodeRef::new(),
        note: RwSignal::new(None),
    };
    Effect::new(move |_| {
        state.scroll_to_end();
    });
    #[cfg(feature = "hydrate")]
    super::live::open(build_id, state, follow_live, on_end);
    #[cfg(not(feature = "hydrate"))]
    let _ = (build_id, follow_live, on_end);
    let empty = move || state.chunks.with(|c| c.iter().all(|c| c.lines.is_empty()));
    // Step names are `[A-Za-z0-9_.-]`: safe inside a quoted CSS string.
    let filter_css = move || {
        filter.with(|f| {
            f.as_deref()
                .map(|s| format!("#build-log .log-line:not([data-step=\"{s}\"]){{display:none}}"))
                .unwrap_or_default()
        })
    };
    view! {
        <div class="log-head">
            <h2>"Log"</h2>
            <style id="step-filter" inner_html=filter_css></style>
            {move || {
                filter
                    .get()
                    .map(|s| view! { <span id="log-step" class="muted">{format!("Step {s} only")}</span> })
            }}
            <div class="field check">
                <input
                    id="follow-tail"
                    type="checkbox"
                    checked=move || state.following.get()
                    prop:checked=move || state.following.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        state.following.set(on);
                        if on {
                            state.scroll_to_end();
                        }
                    }
                />
                <label for="follow-tail">"Follow the end of the log"</label>
            </div>
        </div>
        <div
            id="build-log"
            class="log"
            role="log"
            tabindex="0"
            node_ref=state.node
            on:scroll=move |_| state.on_scroll()
        >
            <For each=move || state.chunks.get() key=|c| c.id let:chunk>
                <div class="log-chunk" inner_html=chunk_markup(&chunk.lines)></div>
            </For>
        </div>
        {move || empty().then(|| view! { <p class="muted">"No log lines yet."</p> }.into_any())}
        {move || state.note.get().map(|n| view! { <p class="muted" role="status">{n}</p> }.into_any())}
    }
    .into_any()
}

/// The lines with a `seq` above `last` (and above every line before them),
/// and the new last `seq`.
pub fn unseen(lines: Vec<LogLineView>, mut last: u64) -> (Vec<LogLineView>, u64) {
    let fresh = lines
        .into_iter()
        .filter(|l| {
            let new = l.seq > last;
            last = last.max(l.seq);
            new
        })
        .collect();
    (fresh, last)
}

/// A chunk's lines as markup (`components::html`: every value escaped, the
/// text through the ANSI parser), set with `inner_html`: one string per
/// chunk instead of a view per line and colour span.
pub fn chunk_markup(lines: &[LogLineView]) -> String {
    let mut out = String::with_capacity(lines.len() * 120);
    for l in lines {
        out.push_str("<div class=\"log-line log-");
        html::attr(&mut out, &l.stream);
        out.push_str("\" data-seq=\"");
        out.push_str(&l.seq.to_string());
        if let Some(step) = &l.step {
            out.push_str("\" data-step=\"");
            html::attr(&mut out, step);
        }
        out.push_str("\" title=\"");
        html::attr(&mut out, &l.ts);
        out.push_str("\">");
        ansi::markup(&mut out, &l.text);
        out.push_str("</div>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64) -> LogLineView {
        LogLineView {
            seq,
            ts: String::new(),
            stream: "stdout".into(),
            text: format!("line {seq}"),
            step: None,
        }
    }

    #[test]
    fn lines_are_escaped_markup_with_colour_spans() {
        let mut l = line(9);
        l.text = "\u{1b}[31mred\u{1b}[0m <img src=x>".into();
        l.step = Some("lint\"x".into());
        l.ts = "2026-12-06T08:00:00Z".into();
        assert_eq!(
            chunk_markup(&[l, line(10)]),
            "<div class=\"log-line log-stdout\" data-seq=\"9\" data-step=\"lint&quot;x\" \
             title=\"2026-12-06T08:00:00Z\"><span class=\"ansi-fg-1\">red</span> &lt;img src=x&gt;</div>\
             <div class=\"log-line log-stdout\" data-seq=\"10\" title=\"\">line 10</div>"
        );
    }

    #[test]
    fn each_line_is_kept_once() {
        let (fresh, last) = unseen(vec![line(3), line(4), line(4), line(5), line(2), line(6)], 3);
        assert_eq!(fresh.iter().map(|l| l.seq).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(last, 6);
        let (fresh, last) = unseen(vec![line(1)], 6);
        assert!(fresh.is_empty());
        assert_eq!(last, 6);
    }
}
