//! The env var editor of the settings form. A saved secret's value never
//! reaches the browser: its input stays empty ("unchanged (secret)") and an
//! empty value is submitted as "keep the stored one".

use leptos::prelude::*;

use super::fields::EnvValues;

/// One editable row; `key` is stable while the row lives (ids, `For`).
#[derive(Clone, Copy)]
pub struct EnvRow {
    pub key: usize,
    pub name: RwSignal<String>,
    pub value: RwSignal<String>,
    pub secret: RwSignal<bool>,
    pub saved_secret: bool,
}

/// The rows and the counter that keys new ones.
#[derive(Clone, Copy)]
pub struct EnvRows {
    pub rows: RwSignal<Vec<EnvRow>>,
    next_key: StoredValue<usize>,
}

impl EnvRows {
    pub fn new(values: &[EnvValues]) -> Self {
        let this = EnvRows { rows: RwSignal::new(Vec::new()), next_key: StoredValue::new(0) };
        this.load(values);
        this
    }

    fn row(&self, v: &EnvValues) -> EnvRow {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        EnvRow {
            key,
            name: RwSignal::new(v.name.clone()),
            value: RwSignal::new(v.value.clone()),
            secret: RwSignal::new(v.secret),
            saved_secret: v.saved_secret,
        }
    }

    pub fn load(&self, values: &[EnvValues]) {
        let rows = values.iter().map(|v| self.row(v)).collect();
        self.rows.set(rows);
    }

    pub fn add(&self) {
        let blank =
            EnvValues { name: String::new(), value: String::new(), secret: false, saved_secret: false };
        let row = self.row(&blank);
        self.rows.update(|rows| rows.push(row));
    }

    pub fn remove(&self, key: usize) {
        self.rows.update(|rows| rows.retain(|r| r.key != key));
    }

    pub fn values(&self) -> Vec<EnvValues> {
        self.rows
            .get_untracked()
            .iter()
            .map(|r| EnvValues {
                name: r.name.get_untracked(),
                value: r.value.get_untracked(),
                secret: r.secret.get_untracked(),
                saved_secret: r.saved_secret,
            })
            .collect()
    }
}

#[component]
pub fn EnvEditor(env: EnvRows) -> impl IntoView {
    view! {
        <div class="env-editor">
            <For each=move || env.rows.get() key=|r| r.key let:row>
                <EnvRowView row env />
            </For>
            <button id="env-add" type="button" class="secondary" on:click=move |_| env.add()>
                "Add variable"
            </button>
        </div>
    }
    .into_any()
}

#[component]
fn EnvRowView(row: EnvRow, env: EnvRows) -> impl IntoView {
    let (name_id, value_id, secret_id) = (
        format!("env-name-{}", row.key),
        format!("env-value-{}", row.key),
        format!("env-secret-{}", row.key),
    );
    let placeholder = row.saved_secret.then_some("unchanged (secret)");
    view! {
        <div class="env-row">
            <div class="field">
                <label for=name_id.clone()>"Name"</label>
                <input
                    id=name_id
                    class="env-name"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    value=row.name.get_untracked()
                    prop:value=move || row.name.get()
                    on:input=move |ev| row.name.set(event_target_value(&ev))
                />
            </div>
            <div class="field grow">
                <label for=value_id.clone()>"Value"</label>
                <input
                    id=value_id
                    class="env-value"
                    type=move || if row.secret.get() { "password" } else { "text" }
                    autocomplete="off"
                    spellcheck="false"
                    placeholder=placeholder
                    value=row.value.get_untracked()
                    prop:value=move || row.value.get()
                    on:input=move |ev| row.value.set(event_target_value(&ev))
                />
            </div>
            <div class="field check">
                <input
                    id=secret_id.clone()
                    class="env-secret"
                    type="checkbox"
                    checked=row.secret.get_untracked()
                    prop:checked=move || row.secret.get()
                    on:change=move |ev| row.secret.set(event_target_checked(&ev))
                />
                <label for=secret_id>"Secret"</label>
            </div>
            <button type="button" class="env-remove secondary" on:click=move |_| env.remove(row.key)>
                "Remove"
            </button>
        </div>
    }
    .into_any()
}
