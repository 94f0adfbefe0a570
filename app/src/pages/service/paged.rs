//! A history table's paging state: the rows so far, the next page's `before`
//! and the last error, with the "More" button that appends the next page.

use std::future::Future;

use leptos::prelude::*;

use crate::{
    components::{error_text, Task},
    error::AppError,
    wire::HistoryPage,
};

pub struct Paged<T: Send + Sync + 'static> {
    pub items: RwSignal<Vec<T>>,
    pub next: RwSignal<Option<i64>>,
    pub error: RwSignal<Option<String>>,
    pub more: Task,
    /// Loads the page before the given id.
    pub load: Callback<i64>,
}

impl<T: Send + Sync + 'static> Clone for Paged<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Paged<T> {}

impl<T: Send + Sync + 'static> Paged<T> {
    /// Starts from the server-rendered first page; `fetch(before)` loads the
    /// following ones.
    pub fn new<F, Fut>(first: HistoryPage<T>, fetch: F) -> Self
    where
        F: Fn(i64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<HistoryPage<T>, AppError>> + Send + 'static,
    {
        let items = RwSignal::new(first.items);
        let next = RwSignal::new(first.next);
        let error = RwSignal::new(None::<String>);
        let more = Task::new();
        let load = Callback::new(move |before: i64| {
            more.run(fetch(before), move |answer| match answer {
                Ok(page) => {
                    let _ = items.try_update(|v| v.extend(page.items));
                    let _ = next.try_set(page.next);
                    let _ = error.try_set(None);
                }
                Err(e) => {
                    let _ = error.try_set(Some(error_text(&e)));
                }
            });
        });
        Paged { items, next, error, more, load }
    }

    /// The error line and the "More" button (`id`), while a next page exists.
    pub fn footer(self, id: &'static str) -> impl IntoView {
        let Paged { next, error, more, load, .. } = self;
        view! {
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> }.into_any())}
            {move || next.get().map(|before| view! {
                <button
                    id=id
                    type="button"
                    class="secondary"
                    disabled=move || more.pending()
                    on:click=move |_| load.run(before)
                >
                    "More"
                </button>
            }.into_any())}
        }
    }
}
