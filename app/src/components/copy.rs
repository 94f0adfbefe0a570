//! A line of text to copy (a URL, a command) with its Copy button: the
//! asynchronous clipboard where the browser offers it (secure contexts), else
//! the text is selected so Ctrl+C copies it. A few lines of JavaScript do it
//! (a wasm-bindgen snippet): far less bundle than the same calls from Rust.

use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen(inline_js = "export function copy_line(button) {
  const code = button.previousElementSibling;
  const select = () => {
    getSelection().selectAllChildren(code);
    button.textContent = 'Selected: press Ctrl+C';
  };
  if (!navigator.clipboard) return select();
  navigator.clipboard.writeText(code.textContent).then(() => { button.textContent = 'Copied'; }, select);
}")]
extern "C" {
    /// Copies the text of the button's previous sibling; the button says how.
    fn copy_line(button: &wasm_bindgen::JsValue);
}

/// `<code id=id>text</code>` and its Copy button. (A function, not a
/// component: no props type in the bundle.)
pub fn copy_line_view(id: &'static str, text: String) -> AnyView {
    view! {
        <span class="copy-line">
            <code id=id>{text}</code>
            <button
                type="button"
                class="copy secondary"
                on:click=|ev| {
                    if let Some(button) = ev.current_target() {
                        copy_line(&button);
                    }
                }
            >
                "Copy"
            </button>
        </span>
    }
    .into_any()
}
