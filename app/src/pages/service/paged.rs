//! A history table's paging state: the rows so far, the next page's `before`
//! and the last error, with the "More" button that appends the next page and
//! `replace` that puts a fresh first page in place of the rows.

use leptos::prelude::*;

use crate::{
    components::{error_text, Task},
    error::AppError,
    wire::HistoryPage,
};

/// Loads the page before the given id (`None`: the first page).
pub type Fetch<T> = std::sync::Arc<
    dyn Fn(Option<i64>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Answer<T>> + Send>>
        + Send
        + Sync,
>;
/// A page of a history, or why it could not be read.
pub type Answer<T> = Result<HistoryPage<T>, AppError>;

pub struct Paged<T: Send + Sync + 'static> {
    pub items: RwSignal<Vec<T>>,
    pub next: RwSignal<Option<i64>>,
    pub error: RwSignal<Option<String>>,
    pub more: Task,
    fetch: StoredValue<Fetch<T>>,
}

impl<T: Send + Sync + 'static> Clone for Paged<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Paged<T> {}

impl<T: Send + Sync + 'static> Paged<T> {
    /// Starts from the server-rendered first page; `fetch` loads the
    /// following ones and fresh first pages.
    pub fn new(first: HistoryPage<T>, fetch: Fetch<T>) -> Self {
        let paged = Paged {
            items: RwSignal::new(Vec::new()),
            next: RwSignal::new(None),
            error: RwSignal::new(None),
            more: Task::new(),
            fetch: StoredValue::new(fetch),
        };
        paged.take(Ok(first), false);
        paged
    }

    /// Appends (`append`) or replaces the rows with `answer`'s page.
    fn take(self, answer: Answer<T>, append: bool) {
        match answer {
            Ok(page) => {
                let _ = self.items.try_update(|v| {
                    if !append {
                        v.clear();
                    }
                    v.extend(page.items)
                });
                let _ = self.next.try_set(page.next);
                let _ = self.error.try_set(None);
            }
            Err(e) => {
                let _ = self.error.try_set(Some(error_text(&e)));
            }
        }
    }

    /// Appends the page before `before`.
    fn load(self, before: i64) {
        let Some(fetch) = self.fetch.try_get_value() else { return };
        self.more.run(fetch(Some(before)), move |answer| self.take(answer, true));
    }

    /// Replaces the rows with a fresh first page (after a build or deploy).
    pub fn replace(self, first: HistoryPage<T>) {
        self.take(Ok(first), false);
    }

    /// The error line and the "More" button (`id`), while a next page exists.
    pub fn footer(self, id: &'static str) -> impl IntoView {
        let Paged { next, error, more, .. } = self;
        view! {
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> }.into_any())}
            {move || next.get().map(|before| view! {
                <button
                    id=id
                    type="button"
                    class="secondary"
                    disabled=move || more.pending()
                    on:click=move |_| self.load(before)
                >
                    "More"
                </button>
            }.into_any())}
        }
    }
}
