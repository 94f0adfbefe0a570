//! Small pieces shared by the pages: the signed-in caller, the sign-in
//! prompt, error and status display, formatting, ANSI logs, browser helpers.

use leptos::{
    prelude::*,
    server::codee::{Decoder, Encoder},
};

use crate::{error::AppError, wire::Caller};

pub mod ansi;
pub mod browser;
pub mod copy;
pub mod deploys;
pub mod form;
pub mod format;
pub mod html;

/// The caller as `whoami` answered for this page load (provided by `App`).
#[derive(Clone, Copy)]
pub struct Session(pub Res<Result<Caller, AppError>>);

impl Session {
    /// The caller; anonymous when the answer was an error.
    pub async fn caller(self) -> Caller {
        self.0.await.unwrap_or(Caller::Anonymous)
    }
}

/// JSON for resources (server → browser), decoded with `from_slice` like
/// the answers of server functions. `serde_json::from_str` and `from_slice`
/// are separate instantiations of every `Deserialize` impl: with the default
/// codec (`from_str`) the browser bundle held each wire type's deserializer
/// twice.
///
/// The JSON travels with `"` and `'` swapped: Leptos writes it into the
/// page as a JavaScript string literal with Rust's `Debug` escaping, where
/// each `"` (thousands in a page of history) breaks the run of plain bytes
/// and costs an escape; `'` passes as is. Swapping two ASCII bytes keeps
/// UTF-8 valid and is its own inverse.
pub struct Json;

fn swap_quotes(bytes: &mut [u8]) {
    for b in bytes {
        *b = match *b {
            b'"' => b'\'',
            b'\'' => b'"',
            other => other,
        };
    }
}

impl<T: serde::Serialize> Encoder<T> for Json {
    type Error = leptos::serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, Self::Error> {
        let mut bytes = leptos::serde_json::to_vec(val)?;
        swap_quotes(&mut bytes);
        String::from_utf8(bytes).map_err(<Self::Error as serde::ser::Error>::custom)
    }
}

impl<T: serde::de::DeserializeOwned> Decoder<T> for Json {
    type Error = leptos::serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, Self::Error> {
        let mut bytes = val.as_bytes().to_vec();
        swap_quotes(&mut bytes);
        leptos::serde_json::from_slice(&bytes)
    }
}

/// A view that follows its signals in the browser and is built once on the
/// server. Server rendering calls a reactive closure twice (once to start
/// the resources below it, once to write the HTML), which built every row of
/// a history table twice per page; there, nothing changes between the two
/// calls, so the view is built once, untracked. A closure renders no
/// markers of its own, so the browser's closure hydrates the server's HTML.
pub fn live<V: IntoView + 'static>(view: impl Fn() -> V + Send + Sync + 'static) -> AnyView {
    build_live(view)
}

#[cfg(feature = "ssr")]
fn build_live<V: IntoView + 'static>(view: impl Fn() -> V) -> AnyView {
    untrack(view).into_any()
}

#[cfg(not(feature = "ssr"))]
fn build_live<V: IntoView + 'static>(view: impl Fn() -> V + Send + Sync + 'static) -> AnyView {
    view.into_any()
}

/// A resource carried with [`Json`].
pub type Res<T> = Resource<T, Json>;

/// `Resource::new` with the [`Json`] codec.
#[track_caller]
pub fn resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Res<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    S: Send + Sync + Clone + PartialEq + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// A call boxed by [`Task::run`]: its answer, already bound to the code that
/// takes it.
type TaskCall = std::pin::Pin<Box<dyn std::future::Future<Output = Box<dyn FnOnce()>>>>;

/// A server call started by the page (a button, a form). `pending` while one
/// runs; only the newest call's answer is handed on, like `Action`. Each
/// `Action<I, O>` type costs the browser bundle about 4.5 KB of generic code;
/// a `Task` is one type for every call.
#[derive(Clone, Copy)]
pub struct Task {
    running: RwSignal<u32>,
    latest: StoredValue<u64>,
}

impl Task {
    pub fn new() -> Self {
        Task { running: RwSignal::new(0), latest: StoredValue::new(0) }
    }

    /// Whether a call is running (reactive).
    pub fn pending(&self) -> bool {
        self.running.get() > 0
    }

    /// Runs `call` in the background and gives its answer to `done`, unless
    /// a newer call was started meanwhile or the page is gone.
    pub fn run<T: 'static>(
        &self,
        call: impl std::future::Future<Output = T> + 'static,
        done: impl FnOnce(T) + 'static,
    ) {
        self.start(Box::pin(async move {
            let answer = call.await;
            Box::new(move || done(answer)) as Box<dyn FnOnce()>
        }));
    }

    /// The part of [`Task::run`] that does not depend on the call: one copy
    /// in the browser bundle instead of one per call site (52 of them).
    #[inline(never)]
    fn start(&self, call: TaskCall) {
        let Task { running, latest } = *self;
        let Some(n) = latest.try_update_value(|v| {
            *v += 1;
            *v
        }) else {
            return;
        };
        running.update(|r| *r += 1);
        leptos::task::spawn_local(async move {
            let finish = call.await;
            let _ = running.try_update(|r| *r = r.saturating_sub(1));
            if latest.try_get_value() == Some(n) {
                finish();
            }
        });
    }
}

impl Default for Task {
    fn default() -> Self {
        Self::new()
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
                <p class="error" role="alert">{e.message()}</p>
                <p><a href="/">"Back to the projects"</a></p>
            </section>
        }
        .into_any(),
    }
}

/// The text shown for an error next to a form or action: a plain
/// sentence (see [`AppError::message`]).
pub fn error_text(e: &AppError) -> String {
    e.message()
}

/// A build or deployment status as a coloured badge.
#[component]
pub fn StatusBadge(#[prop(into)] status: String, #[prop(optional, into)] class: String) -> impl IntoView {
    let class = format!("{} {class}", badge_class(&status));
    view! { <span class=class>{status_label(&status).to_string()}</span> }
}

/// A status as people read it: `rolled_back` → `rolled back`. The only
/// statuses with an underscore are these two (builds, jobs, deployments).
pub fn status_label(status: &str) -> &str {
    match status {
        "rolled_back" => "rolled back",
        "timed_out" => "timed out",
        other => other,
    }
}

/// The classes of a status badge: `badge badge-good|bad|busy|neutral`.
pub fn badge_class(status: &str) -> &'static str {
    match status {
        "succeeded" | "live" | "success" => "badge badge-good",
        "failed" | "timed_out" | "interrupted" | "failure" | "killed" => "badge badge-bad",
        "queued" | "running" | "pending" | "starting" => "badge badge-busy",
        _ => "badge badge-neutral",
    }
}

/// "Loading…" placeholder for a Suspense fallback.
pub fn loading() -> impl IntoView {
    view! { <p class="muted loading">"Loading…"</p> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_codec_round_trips_with_quotes_swapped() {
        let value = vec![("it's \"quoted\"".to_string(), Some(3)), ("<b>'&'</b>".to_string(), None)];
        let encoded = <Json as Encoder<_>>::encode(&value).expect("encodes");
        assert_eq!(encoded, r#"[['it"s \'quoted\'',3],['<b>"&"</b>',null]]"#);
        let decoded: Vec<(String, Option<i32>)> = <Json as Decoder<_>>::decode(&encoded).expect("decodes");
        assert_eq!(decoded, value);
        let plain = <Json as Encoder<_>>::encode(&vec!["a b"; 3]).expect("encodes");
        assert!(!plain.contains('"'), "nothing left for the page to escape: {plain}");
    }
}
