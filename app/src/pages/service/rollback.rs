//! The rollback confirmation dialog: what the rollback would change (image,
//! commit, config), a reason, confirm or cancel.

use leptos::{html::Dialog, prelude::*};

use crate::{
    api::deploys::{rollback, rollback_preview},
    components::{error_text, format::short_time},
    error::AppError,
    wire::{DeploymentView, RollbackPlanView},
};

/// Opens the dialog for a deployment; shared by the table's buttons.
#[derive(Clone, Copy)]
pub struct Rollback {
    node: NodeRef<Dialog>,
    preview: Action<i64, Result<RollbackPlanView, AppError>>,
    confirm: Action<(i64, Option<String>), Result<DeploymentView, AppError>>,
    target: RwSignal<Option<i64>>,
    reason: RwSignal<String>,
}

impl Rollback {
    pub fn new() -> Self {
        Rollback {
            node: NodeRef::new(),
            preview: Action::new(|id: &i64| rollback_preview(*id)),
            confirm: Action::new(|(id, reason): &(i64, Option<String>)| rollback(*id, reason.clone())),
            target: RwSignal::new(None),
            reason: RwSignal::new(String::new()),
        }
    }

    pub fn open(&self, deployment_id: i64) {
        self.target.set(Some(deployment_id));
        self.reason.set(String::new());
        self.confirm.clear();
        self.preview.dispatch(deployment_id);
        if let Some(dialog) = self.node.get_untracked() {
            let _ = dialog.show_modal();
        }
    }

    fn close(&self) {
        if let Some(dialog) = self.node.get_untracked() {
            dialog.close();
        }
    }
}

#[component]
pub fn RollbackDialog(state: Rollback, on_done: Callback<DeploymentView>) -> impl IntoView {
    let Rollback { node, preview, confirm, target, reason } = state;
    Effect::new(move |_| {
        if let Some(Ok(dep)) = confirm.value().get() {
            state.close();
            on_done.run(dep);
        }
    });
    let error = move || {
        let from_preview = preview.value().get().and_then(Result::err);
        let from_confirm = confirm.value().get().and_then(Result::err);
        from_confirm
            .or(from_preview)
            .map(|e| view! { <p id="rollback-error" class="error" role="alert">{error_text(&e)}</p> })
    };
    let ready = move || !preview.pending().get() && matches!(preview.value().get(), Some(Ok(_)));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(id) = target.get_untracked() {
            let reason = Some(reason.get_untracked().trim().to_string()).filter(|r| !r.is_empty());
            confirm.dispatch((id, reason));
        }
    };
    view! {
        <dialog id="rollback-dialog" node_ref=node aria-labelledby="rollback-title">
            <form method="dialog" on:submit=on_submit>
                <h2 id="rollback-title">
                    {move || target.get().map(|id| format!("Roll back to deployment #{id}")).unwrap_or_default()}
                </h2>
                {move || match (preview.pending().get(), preview.value().get()) {
                    (true, _) => view! { <p class="muted">"Loading what would change…"</p> }.into_any(),
                    (false, Some(Ok(p))) => view! { <PreviewView p /> }.into_any(),
                    _ => ().into_any(),
                }}
                <div class="field">
                    <label for="rollback-reason">"Reason (optional)"</label>
                    <input id="rollback-reason" type="text" bind:value=reason />
                </div>
                {error}
                <div class="dialog-buttons">
                    <button
                        id="rollback-confirm"
                        type="submit"
                        disabled=move || !ready() || confirm.pending().get()
                    >
                        "Roll back"
                    </button>
                    <button id="rollback-cancel" type="button" class="secondary" on:click=move |_| state.close()>
                        "Cancel"
                    </button>
                </div>
            </form>
        </dialog>
    }
    .into_any()
}

#[component]
fn PreviewView(p: RollbackPlanView) -> impl IntoView {
    let t = p.target;
    let current = p
        .current
        .map(|c| format!("Now live: #{} (image {})", c.id, c.image_id))
        .unwrap_or_else(|| "Nothing is live now.".into());
    let changes = p.changes;
    let no_changes = changes.is_empty();
    view! {
        <dl class="facts">
            <dt>"Image"</dt>
            <dd id="rollback-image" class="mono">{t.image_id.clone()}</dd>
            <dt>"Commit"</dt>
            <dd id="rollback-commit" class="mono">{t.commit_sha.clone().unwrap_or_else(|| "—".into())}</dd>
            <dt>"Deployed"</dt>
            <dd>{short_time(&t.created_at)}</dd>
        </dl>
        <p class="muted">{current}</p>
        <h3>"Configuration changes"</h3>
        <ul id="rollback-changes">
            {changes
                .into_iter()
                .map(|c| view! {
                    <li>
                        <strong>{c.field}</strong>": "<span class="mono">{c.live}</span>" → "<span class="mono">{c.target}</span>
                    </li>
                })
                .collect_view()}
        </ul>
        {no_changes.then(|| view! { <p class="muted">"The configuration stays the same; only the image changes."</p> })}
    }
    .into_any()
}
