use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <section class="card">
            <h1>"Not found"</h1>
            <p>"There is no page at this address. " <a href="/">"Back to the projects"</a></p>
        </section>
    }
    .into_any()
}
