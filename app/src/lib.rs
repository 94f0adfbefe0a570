//! Slipway's user interface: routes, pages, components, the wire types shared
//! by browser and server, the `#[server]` functions and the `Backend` port
//! they call. No database, Docker or domain rules live here.

pub mod api;
#[cfg(feature = "ssr")]
pub mod backend;
pub mod error;
pub mod pages;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

pub use error::AppError;

/// The HTML document the server renders around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/slipway.css" />
        <Title text="Slipway" />
        <Router>
            <header class="topbar">
                <a class="brand" href="/">"Slipway"</a>
            </header>
            <main>
                <Routes fallback=pages::not_found::NotFound>
                    <Route
                        path=path!("")
                        view=pages::status::StatusPage
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
}
