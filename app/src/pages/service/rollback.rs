//! The rollback confirmation dialog: what the rollback would change (image,
//! commit, config), a reason, confirm or cancel.

use leptos::{html::Dialog, prelude::*};

use crate::{
    api::deploys::{rollback, rollback_preview},
    components::{error_text, format::short_time, Task},
    error::AppError,
    wire::{DeploymentView, RollbackPlanView},
};

/// Opens the dialog for a deployment; shared by the table's buttons.
#[derive(Clone, Copy)]
pub struct Rollback {
    node: NodeRef<Dialog>,
    /// Loading what a rollback would change, and its answer.
    preview: Task,
    plan: RwSignal<Option<Result<RollbackPlanView, AppError>>>,
    /// The rollback itself, and its refusal.
    confirm: Task,
    refused: RwSignal<Option<AppError>>,
    target: RwSignal<Option<i64>>,
    reason: RwSignal<String>,
}

impl Rollback {
    pub fn new() -> Self {
        Rollback {
            node: NodeRef::new(),
            preview: Task::new(),
            plan: RwSignal::new(None),
            confirm: Task::new(),
            refused: RwSignal::new(None),
            target: RwSignal::new(None),
            reason: RwSignal::new(String::new()),
        }
    }

    pub fn open(&self, deployment_id: i64) {
        self.target.set(Some(deployment_id));
        self.reason.set(String::new());
        self.refused.set(None);
        let plan = self.plan;
        self.preview.run(rollback_preview(deployment_id), move |answer| plan.set(Some(answer)));
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
    let Rollback { node, preview, plan, confirm, refused, target, reason } = state;
    let error = move || {
        let from_preview = plan.get().and_then(Result::err);
        refused.get().or(from_preview).map(|e| {
            view! { <p id="rollback-error" class="error" role="alert">{error_text(&e)}</p> }.into_any()
        })
    };
    let ready = move || !preview.pending() && plan.with(|p| matches!(p, Some(Ok(_))));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(id) = target.get_untracked() {
            let reason = Some(reason.get_untracked().trim().to_string()).filter(|r| !r.is_empty());
            confirm.run(rollback(id, reason), move |answer| match answer {
                Ok(dep) => {
                    state.close();
                    on_done.run(dep);
                }
                Err(e) => refused.set(Some(e)),
            });
        }
    };
    view! {
        <dialog id="rollback-dialog" node_ref=node aria-labelledby="rollback-title">
            <form method="dialog" on:submit=on_submit>
                <h2 id="rollback-title">
                    {move || target.get().map(|id| format!("Roll back to deployment #{id}")).unwrap_or_default()}
                </h2>
                {move || match (preview.pending(), plan.get()) {
                    (true, _) => view! { <p class="muted">"Loading what would change…"</p> }.into_any(),
                    (false, Some(Ok(p))) => view! { <PreviewView p /> }.into_any(),
                    _ => ().into_any(),
                }}
                <div class="field">
                    <label for="rollback-reason">"Reason (optional)"</label>
                    <input id="rollback-reason" type="text" bind:value=reason />
                </div>
                {move || error()}
                <div class="dialog-buttons">
                    <button
                        id="rollback-confirm"
                        type="submit"
                        disabled=move || !ready() || confirm.pending()
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
                }.into_any())
                .collect_view()}
        </ul>
        {no_changes.then(|| view! { <p class="muted">"The configuration stays the same; only the image changes."</p> }.into_any())}
    }
    .into_any()
}
