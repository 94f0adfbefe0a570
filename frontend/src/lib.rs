//! Browser entry point: hydrates the server-rendered page. Everything else lives in `app`.
// The larger pages nest view types deeply; the default limit of 128 can
// overflow when the hydrate build instantiates them.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
