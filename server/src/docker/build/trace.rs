//! BuildKit's progress (`moby.buildkit.trace` messages: base64 of a protobuf
//! `moby.buildkit.v1.StatusResponse`) turned into ordered log lines like
//! `docker build --progress=plain` prints them:
//!
//! ```text
//! #5 [2/3] RUN make
//! #5 0.412 compiling…
//! #5 DONE 1.3s
//! #6 [3/3] COPY app /app
//! #6 CACHED
//! #7 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
//! ```
//!
//! Vertexes are numbered in the order they first start; a vertex's output
//! is buffered per stream until a whole line is there, so lines of steps
//! running in parallel never mix mid-line.

use std::collections::HashMap;

use crate::logs::LogStream;

pub use super::proto::{decode, StatusResponse, Timestamp, Vertex, VertexLog};

/// What one trace message gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Line(LogStream, String),
    /// `(steps started, steps known)`: Dockerfile steps (`[i/n]` vertexes).
    Step(u32, u32),
}

#[derive(Default)]
struct VertexState {
    index: u32,
    name: String,
    started: Option<Timestamp>,
    done: bool,
    /// Unfinished output lines: stdout, stderr.
    partial: [String; 2],
}

/// The state of one build's trace.
#[derive(Default)]
pub struct Trace {
    vertexes: HashMap<String, VertexState>,
    next_index: u32,
    /// `n` of each stage's `[i/n]` (keyed by the stage name, "" for none).
    stage_steps: HashMap<String, u32>,
    steps_started: u32,
    /// The first vertex that failed on its own: its name and error.
    failed: Option<(String, String)>,
}

/// `("stage", n)` of a step vertex name `[stage i/n] …` or `[i/n] …`.
pub fn step_of(name: &str) -> Option<(&str, u32)> {
    let inner = name.strip_prefix('[')?.split_once(']')?.0;
    let (stage, counts) = match inner.rsplit_once(' ') {
        Some((stage, counts)) => (stage, counts),
        None => ("", inner),
    };
    let (i, n) = counts.split_once('/')?;
    i.parse::<u32>().ok()?;
    Some((stage, n.parse().ok()?))
}

/// Errors of vertexes stopped because another one failed.
fn is_cancellation(error: &str) -> bool {
    error.contains("context canceled") || error.contains("context cancelled")
}

impl Trace {
    /// The failing step's name and error, when a vertex failed.
    pub fn failed_step(&self) -> Option<(&str, &str)> {
        self.failed.as_ref().map(|(name, error)| (name.as_str(), error.as_str()))
    }

    /// Applies one trace message; returns the log lines and step progress it
    /// gives, in order.
    pub fn apply(&mut self, status: StatusResponse) -> Vec<Output> {
        let mut out = Vec::new();
        let mut completed = Vec::new();
        for v in status.vertexes {
            self.vertex(v, &mut out, &mut completed);
        }
        for s in status.statuses {
            if s.completed.is_none() || s.id.is_empty() {
                continue;
            }
            if let Some(state) = self.vertexes.get(&s.vertex) {
                let size = if s.current > 0 && s.total == 0 {
                    format!(" {}", bytes(s.current))
                } else {
                    String::new()
                };
                out.push(Output::Line(LogStream::Stdout, format!("#{} {}{size} done", state.index, s.id)));
            }
        }
        for l in status.logs {
            self.log(l, &mut out);
        }
        for w in status.warnings {
            let short = String::from_utf8_lossy(&w.short).trim().to_string();
            let prefix = self.vertexes.get(&w.vertex).map(|s| format!("#{} ", s.index)).unwrap_or_default();
            out.push(Output::Line(LogStream::Stderr, format!("{prefix}WARNING: {short}")));
        }
        for (digest, error) in completed {
            self.complete(&digest, error, &mut out);
        }
        out
    }

    /// Lines of output still buffered (a last line without a newline).
    pub fn flush(&mut self) -> Vec<Output> {
        let mut states: Vec<&mut VertexState> = self.vertexes.values_mut().collect();
        states.sort_by_key(|s| s.index);
        let mut out = Vec::new();
        for state in states {
            flush_partial(state, &mut out);
        }
        out
    }

    fn vertex(&mut self, v: Vertex, out: &mut Vec<Output>, completed: &mut Vec<(String, String)>) {
        let known = self.vertexes.contains_key(&v.digest);
        if !known && v.started.is_none() && !v.cached && v.completed.is_none() {
            // Not running yet: announced when it starts.
            return;
        }
        if !known {
            self.next_index += 1;
            let state =
                VertexState { index: self.next_index, name: v.name.clone(), ..VertexState::default() };
            out.push(Output::Line(LogStream::Stdout, format!("#{} {}", state.index, v.name)));
            self.vertexes.insert(v.digest.clone(), state);
            if let Some((stage, n)) = step_of(&v.name) {
                self.stage_steps.insert(stage.to_string(), n);
                self.steps_started += 1;
                let total = self.stage_steps.values().sum::<u32>().max(self.steps_started);
                out.push(Output::Step(self.steps_started, total));
            }
        }
        let Some(state) = self.vertexes.get_mut(&v.digest) else { return };
        if state.done {
            return;
        }
        if state.started.is_none() {
            state.started = v.started;
        }
        if v.cached {
            state.done = true;
            out.push(Output::Line(LogStream::Stdout, format!("#{} CACHED", state.index)));
            return;
        }
        if v.completed.is_some() {
            let elapsed = match (&v.started, &v.completed) {
                (Some(s), Some(c)) => c.secs_since(s),
                _ => 0.0,
            };
            let error = if v.error.is_empty() { String::new() } else { v.error.clone() };
            if !error.is_empty() && !is_cancellation(&error) && self.failed.is_none() {
                self.failed = Some((state.name.clone(), error.clone()));
            }
            completed.push((v.digest, if error.is_empty() { format!("DONE {elapsed:.1}s") } else { error }));
        }
    }

    fn log(&mut self, l: VertexLog, out: &mut Vec<Output>) {
        let Some(state) = self.vertexes.get_mut(&l.vertex) else {
            return;
        };
        let slot = usize::from(l.stream == 2);
        state.partial[slot].push_str(&String::from_utf8_lossy(&l.msg));
        let Some(end) = state.partial[slot].rfind('\n') else {
            return;
        };
        let complete: String = state.partial[slot].drain(..=end).collect();
        let at = match (&l.timestamp, &state.started) {
            (Some(t), Some(s)) => format!(" {:.3}", t.secs_since(s)),
            _ => String::new(),
        };
        let stream = if slot == 1 { LogStream::Stderr } else { LogStream::Stdout };
        for line in complete.lines() {
            out.push(Output::Line(stream, format!("#{}{at} {}", state.index, line.trim_end_matches('\r'))));
        }
    }

    fn complete(&mut self, digest: &str, result: String, out: &mut Vec<Output>) {
        let Some(state) = self.vertexes.get_mut(digest) else { return };
        if state.done {
            return;
        }
        state.done = true;
        flush_partial(state, out);
        if result.starts_with("DONE ") {
            out.push(Output::Line(LogStream::Stdout, format!("#{} {result}", state.index)));
        } else {
            out.push(Output::Line(LogStream::Stderr, format!("#{} ERROR: {result}", state.index)));
        }
    }
}

fn flush_partial(state: &mut VertexState, out: &mut Vec<Output>) {
    for (slot, stream) in [(0, LogStream::Stdout), (1, LogStream::Stderr)] {
        let rest = std::mem::take(&mut state.partial[slot]);
        if !rest.is_empty() {
            out.push(Output::Line(stream, format!("#{} {}", state.index, rest.trim_end_matches('\r'))));
        }
    }
}

/// Sizes as BuildKit prints them (`2.31kB`).
fn bytes(n: i64) -> String {
    let n = n as f64;
    if n < 1e3 {
        format!("{n}B")
    } else if n < 1e6 {
        format!("{:.2}kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.2}MB", n / 1e6)
    } else {
        format!("{:.2}GB", n / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, millis: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: millis * 1_000_000 })
    }

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex { digest: digest.into(), name: name.into(), ..Vertex::default() }
    }

    fn lines(out: &[Output]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                Output::Line(_, text) => Some(text.clone()),
                Output::Step(..) => None,
            })
            .collect()
    }

    #[test]
    fn a_step_is_announced_its_output_kept_whole_and_its_end_timed() {
        let mut t = Trace::default();
        let run = "[2/3] RUN echo hi";
        let out = t.apply(StatusResponse {
            vertexes: vec![
                Vertex { started: ts(100, 0), ..vertex("a", "[1/3] FROM docker.io/x") },
                Vertex { started: ts(100, 0), ..vertex("b", run) },
            ],
            ..Default::default()
        });
        assert_eq!(lines(&out), ["#1 [1/3] FROM docker.io/x", "#2 [2/3] RUN echo hi"]);
        assert!(out.contains(&Output::Step(2, 3)), "{out:?}");
        let log = |msg: &str, ms| VertexLog {
            vertex: "b".into(),
            timestamp: ts(100, ms),
            stream: 1,
            msg: msg.as_bytes().to_vec(),
        };
        // A line split across messages comes out whole, once.
        let out = t.apply(StatusResponse { logs: vec![log("hel", 250)], ..Default::default() });
        assert!(out.is_empty(), "{out:?}");
        let out = t.apply(StatusResponse { logs: vec![log("lo\nwor", 300)], ..Default::default() });
        assert_eq!(lines(&out), ["#2 0.300 hello"]);
        let out = t.apply(StatusResponse {
            vertexes: vec![
                Vertex { started: ts(100, 0), completed: ts(100, 400), ..vertex("b", run) },
                Vertex { cached: true, ..vertex("c", "[3/3] COPY a /a") },
            ],
            ..Default::default()
        });
        assert_eq!(lines(&out), ["#3 [3/3] COPY a /a", "#3 CACHED", "#2 wor", "#2 DONE 0.4s"]);
        // Repeated updates of a finished vertex print nothing.
        let again = t.apply(StatusResponse {
            vertexes: vec![Vertex { started: ts(100, 0), completed: ts(100, 400), ..vertex("b", run) }],
            ..Default::default()
        });
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(t.failed_step(), None);
    }

    #[test]
    fn the_failing_step_is_named_not_a_cancelled_neighbour() {
        let mut t = Trace::default();
        t.apply(StatusResponse {
            vertexes: vec![
                Vertex { started: ts(1, 0), ..vertex("a", "[stage-1 2/2] RUN sleep 5") },
                Vertex { started: ts(1, 0), ..vertex("b", "[2/4] RUN false") },
            ],
            ..Default::default()
        });
        let out = t.apply(StatusResponse {
            vertexes: vec![
                Vertex {
                    started: ts(1, 0),
                    completed: ts(2, 0),
                    error: "context canceled".into(),
                    ..vertex("a", "[stage-1 2/2] RUN sleep 5")
                },
                Vertex {
                    started: ts(1, 0),
                    completed: ts(1, 100),
                    error: "exit code: 1".into(),
                    ..vertex("b", "[2/4] RUN false")
                },
            ],
            ..Default::default()
        });
        assert_eq!(lines(&out), ["#1 ERROR: context canceled", "#2 ERROR: exit code: 1"]);
        assert_eq!(t.failed_step(), Some(("[2/4] RUN false", "exit code: 1")));
    }

    #[test]
    fn step_numbers_come_from_vertex_names_across_stages() {
        assert_eq!(step_of("[2/3] RUN x"), Some(("", 3)));
        assert_eq!(step_of("[build 1/4] FROM y"), Some(("build", 4)));
        assert_eq!(step_of("[internal] load .dockerignore"), None);
        assert_eq!(step_of("exporting to image"), None);
        let mut t = Trace::default();
        let out = t.apply(StatusResponse {
            vertexes: vec![
                Vertex { started: ts(1, 0), ..vertex("a", "[build 1/2] FROM x") },
                Vertex { started: ts(1, 0), ..vertex("b", "[stage-1 1/3] FROM x") },
            ],
            ..Default::default()
        });
        let steps: Vec<_> = out.iter().filter(|o| matches!(o, Output::Step(..))).collect();
        assert_eq!(steps, [&Output::Step(1, 2), &Output::Step(2, 5)]);
    }

    #[test]
    fn a_real_trace_message_decodes() {
        // From the engine: "[internal] load remote build context" started.
        let status = decode(
            "Cn0KR3NoYTI1NjoxMGUxMTg1MjRhNDRmYTc5MjQyMWJiN2Y4YzQ4ZDJjMzU1ZjNmMTg4NzNiNzVmYTY0NTQyZTNmMDEwMTU3NmIzGiRbaW50ZXJuYWxdIGxvYWQgcmVtb3RlIGJ1aWxkIGNvbnRleHQqDAiZgtPYBhCaobjyAg==",
        )
        .expect("decodes");
        assert_eq!(status.vertexes.len(), 1);
        assert_eq!(status.vertexes[0].name, "[internal] load remote build context");
        assert!(status.vertexes[0].digest.starts_with("sha256:"));
        assert!(status.vertexes[0].started.is_some());
        assert!(decode("not base64!").is_err());
    }
}
