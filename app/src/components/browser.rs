//! Browser-only helpers. They compile on the server too but are only called
//! from event handlers and effects, which never run there.

use leptos::__reexports::wasm_bindgen_futures::{js_sys, JsFuture};
use leptos::prelude::*;

/// Loads `url` as a new page (so a new session cookie takes effect everywhere).
pub fn go(url: &str) {
    let _ = window().location().set_href(url);
}

/// Waits `ms` milliseconds (a `setTimeout` promise).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Asks the reader to confirm (the browser's own dialog); false when the
/// dialog cannot be shown.
pub fn confirm(question: &str) -> bool {
    window().confirm_with_message(question).unwrap_or(false)
}
