//! Form errors: the server checks every field and answers all refusals at
//! once ([`AppError::InvalidFields`], or `InvalidField` for one); each
//! message is shown under its input in `p.field-error#<input id>-error`
//! (`data-field` = the field), and the input gets `aria-invalid="true"` and
//! `aria-describedby`. Anything not about a field of the form is the
//! form's general error.

use leptos::prelude::*;

use crate::{
    error::{sentence, AppError},
    wire::FieldError,
};

/// The errors a form shows (reactive, `Copy`).
#[derive(Clone, Copy)]
pub struct FormErrors {
    fields: RwSignal<Vec<FieldError>>,
    general: RwSignal<Option<String>>,
    /// The fields this form has an input for.
    known: &'static [&'static str],
}

impl FormErrors {
    pub fn new(known: &'static [&'static str]) -> Self {
        FormErrors { fields: RwSignal::new(Vec::new()), general: RwSignal::new(None), known }
    }

    pub fn clear(&self) {
        self.fields.set(Vec::new());
        self.general.set(None);
    }

    /// Shows an error answer: each field error at its field, the rest (and
    /// fields without an input here) as the general error.
    pub fn show(&self, e: &AppError) {
        let all = e.field_errors();
        if all.is_empty() {
            self.fields.set(Vec::new());
            self.general.set(Some(e.message()));
            return;
        }
        let (placed, other): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|f| self.known.contains(&f.field.as_str()));
        let rest: Vec<String> = other.iter().map(|f| sentence(&f.message)).collect();
        self.general.set((!rest.is_empty()).then(|| rest.join(" ")));
        self.fields.set(placed);
    }

    /// The general error (reactive).
    pub fn general(&self) -> Option<String> {
        self.general.get()
    }

    /// Whether `field` has an error (reactive).
    pub fn has(&self, field: &str) -> bool {
        self.fields.with(|f| f.iter().any(|f| f.field == field))
    }

    /// `aria-invalid` of the input of `field` (reactive).
    pub fn invalid(&self, field: &'static str) -> impl Fn() -> Option<&'static str> + Copy + 'static {
        let errors = *self;
        move || errors.has(field).then_some("true")
    }

    /// `aria-describedby` of the input `input` (id) of `field`: its
    /// message's id while it has one (reactive).
    pub fn described(
        &self,
        field: &'static str,
        input: &'static str,
    ) -> impl Fn() -> Option<String> + Copy + 'static {
        let errors = *self;
        move || errors.has(field).then(|| format!("{input}-error"))
    }

    /// The messages about `field`, as sentences (reactive).
    fn messages(&self, field: &str) -> Vec<String> {
        self.fields.with(|f| f.iter().filter(|f| f.field == field).map(|f| sentence(&f.message)).collect())
    }
}

/// The message under the input `input` (id) for `field`:
/// `p.field-error#<input>-error[data-field]`, present only with an error.
#[component]
pub fn FieldMessage(errors: FormErrors, field: &'static str, input: &'static str) -> impl IntoView {
    move || {
        let messages = errors.messages(field);
        (!messages.is_empty()).then(|| {
            view! {
                <p class="field-error" id=format!("{input}-error") data-field=field>
                    {messages.join(" ")}
                </p>
            }
            .into_any()
        })
    }
}
