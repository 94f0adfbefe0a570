//! The service settings form, shared by the new-service page and the service
//! page. Refusals naming a field are shown next to that field.

use std::{future::Future, pin::Pin};

use leptos::prelude::*;

use super::{
    env_editor::{EnvEditor, EnvRows},
    fields::{aliases, is_known, FormValues},
};
use crate::{
    components::Task,
    error::{sentence, AppError},
    wire::{limits, FieldError, ServiceDetail, ServiceSettings},
};

/// A server call that saves settings (create or update). Boxed: the form is
/// then one type for both pages.
pub type SaveCall = Pin<Box<dyn Future<Output = Result<ServiceDetail, AppError>>>>;

/// How the form saves: the call for the settings, and what the page does
/// with the saved service (after the form showed it).
#[derive(Clone, Copy)]
pub struct Save {
    pub call: Callback<ServiceSettings, SaveCall>,
    pub done: Callback<ServiceDetail>,
}

/// One signal per text input.
#[derive(Clone, Copy)]
struct Texts {
    name: RwSignal<String>,
    kind: RwSignal<String>,
    image: RwSignal<String>,
    image_from: RwSignal<String>,
    command: RwSignal<String>,
    volumes: RwSignal<String>,
    ports: RwSignal<String>,
    deploy_after: RwSignal<String>,
    watch_paths: RwSignal<String>,
    settle_secs: RwSignal<String>,
    git_url: RwSignal<String>,
    branch: RwSignal<String>,
    context_path: RwSignal<String>,
    dockerfile_path: RwSignal<String>,
    build_args: RwSignal<String>,
    port: RwSignal<String>,
    health_kind: RwSignal<String>,
    health_path: RwSignal<String>,
    health_command: RwSignal<String>,
    health_interval_ms: RwSignal<String>,
    health_timeout_ms: RwSignal<String>,
    health_retries: RwSignal<String>,
    health_start_period_ms: RwSignal<String>,
    memory_mb: RwSignal<String>,
    cpu_millis: RwSignal<String>,
    auto_deploy: RwSignal<bool>,
    build_timeout_secs: RwSignal<String>,
    drain_secs: RwSignal<String>,
    domain: RwSignal<String>,
    target: RwSignal<String>,
    platforms: RwSignal<String>,
    pipeline_path: RwSignal<String>,
    no_cache: RwSignal<bool>,
    supersede_runs: RwSignal<bool>,
    https_redirect: RwSignal<bool>,
    hsts: RwSignal<bool>,
    env: EnvRows,
}

macro_rules! each_text {
    ($m:ident) => {
        $m!(
            name,
            kind,
            image,
            image_from,
            command,
            volumes,
            ports,
            deploy_after,
            watch_paths,
            settle_secs,
            git_url,
            branch,
            context_path,
            dockerfile_path,
            build_args,
            port,
            health_kind,
            health_path,
            health_command,
            health_interval_ms,
            health_timeout_ms,
            health_retries,
            health_start_period_ms,
            memory_mb,
            cpu_millis,
            build_timeout_secs,
            drain_secs,
            domain,
            target,
            platforms,
            pipeline_path
        )
    };
}

impl Texts {
    fn new(v: &FormValues) -> Self {
        macro_rules! make {
            ($($f:ident),*) => {
                Texts { $($f: RwSignal::new(v.$f.clone()),)* auto_deploy: RwSignal::new(v.auto_deploy), no_cache: RwSignal::new(v.no_cache), supersede_runs: RwSignal::new(v.supersede_runs), https_redirect: RwSignal::new(v.https_redirect), hsts: RwSignal::new(v.hsts), env: EnvRows::new(&v.env) }
            };
        }
        each_text!(make)
    }

    fn load(&self, v: &FormValues) {
        macro_rules! set {
            ($($f:ident),*) => { $(self.$f.set(v.$f.clone());)* };
        }
        each_text!(set);
        self.auto_deploy.set(v.auto_deploy);
        self.no_cache.set(v.no_cache);
        self.supersede_runs.set(v.supersede_runs);
        self.https_redirect.set(v.https_redirect);
        self.hsts.set(v.hsts);
        self.env.load(&v.env);
    }

    fn values(&self) -> FormValues {
        macro_rules! get {
            ($($f:ident),*) => {
                FormValues { $($f: self.$f.get_untracked(),)* auto_deploy: self.auto_deploy.get_untracked(), no_cache: self.no_cache.get_untracked(), supersede_runs: self.supersede_runs.get_untracked(), https_redirect: self.https_redirect.get_untracked(), hsts: self.hsts.get_untracked(), env: self.env.values() }
            };
        }
        each_text!(get)
    }
}

#[component]
pub fn ServiceForm(
    initial: ServiceSettings,
    /// Whether the caller may save (viewers see the form disabled).
    editable: bool,
    save: Save,
    /// Edit mode: reload the form from the saved settings and say so.
    reload_on_save: bool,
    #[prop(into)] submit_label: String,
) -> impl IntoView {
    let t = Texts::new(&FormValues::from_settings(&initial));
    let errors = RwSignal::new(Vec::<FieldError>::new());
    let general = RwSignal::new(None::<String>);
    let saved = RwSignal::new(false);
    let saving = Task::new();
    let on_saved = move |answer: Result<ServiceDetail, AppError>| match answer {
        Ok(detail) => {
            errors.set(Vec::new());
            general.set(None);
            if reload_on_save {
                t.load(&FormValues::from_settings(&detail.settings));
                saved.set(true);
            }
            save.done.run(detail);
        }
        // Every refused field at once, each under its input.
        Err(e) => match e.field_errors() {
            list if list.is_empty() => general.set(Some(e.message())),
            list => errors.set(list),
        },
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.set(Vec::new());
        general.set(None);
        saved.set(false);
        match t.values().to_settings() {
            Ok(settings) => saving.run(save.call.run(settings), on_saved),
            Err(e) => errors.set(e),
        }
    };
    let is_http = move || t.health_kind.get() == "http";
    let is_none = move || t.health_kind.get() == "none";
    let kind = move || t.kind.get();
    // The form adapts to the kind: git fields only for a service that
    // builds its own image; port and domain not for a worker.
    let builds = move || kind() != "image" && t.image_from.get().trim().is_empty();
    let worker = move || kind() == "worker";
    let f = move |field: &'static str| FieldCtx { field, errors };

    view! {
        <form id="service-form" class="settings" on:submit=on_submit>
            <p class="muted readonly-note" hidden=editable>"You have read-only access (viewer)."</p>
            <fieldset disabled=!editable>
                <fieldset>
                    <legend>"Source"</legend>
                    <Text id="svc-name" label="Service name" value=t.name ctx=f("name") />
                    <div class="field">
                        <label for="svc-kind">"Kind"</label>
                        <select id="svc-kind" prop:value=kind on:change=move |ev| t.kind.set(event_target_value(&ev))>
                            <option value="web">"Web (port, route, probe)"</option>
                            <option value="worker">"Worker (no port, no route)"</option>
                            <option value="image">"Image (an image in the engine; no git, no build)"</option>
                        </select>
                    </div>
                    <div hidden=move || kind() != "image">
                        <Text id="svc-image" label="Image reference (e.g. redis:7)" value=t.image ctx=f("image") />
                    </div>
                    <div hidden=move || kind() == "image">
                        <Text id="svc-image-from" label="Image from service (empty: build its own)" value=t.image_from ctx=f("image_from") />
                    </div>
                    <div hidden=move || !builds()>
                        <Text id="svc-git-url" label="Git URL" value=t.git_url ctx=f("git_url") />
                        <Text id="svc-branch" label="Branch" value=t.branch ctx=f("branch") />
                        <Text id="svc-context" label="Context directory" value=t.context_path ctx=f("context_path") />
                        <Text id="svc-dockerfile" label="Dockerfile" value=t.dockerfile_path ctx=f("dockerfile_path") />
                        <Area id="svc-build-args" label="Build arguments (NAME=value per line)" value=t.build_args ctx=f("build_args") />
                        <Text id="svc-target" label="Build target stage (empty: the last stage)" value=t.target ctx=f("target") />
                        <Text id="svc-platforms" label="Platforms (e.g. linux/amd64, linux/arm64; empty: the engine's own)" value=t.platforms ctx=f("platforms") />
                        <Area id="svc-watch-paths" label="Watch paths (one glob per line, e.g. api/**; a push that changes none of them is skipped; empty: every push)" value=t.watch_paths ctx=f("watch_paths") />
                        <Text id="svc-pipeline-path" label="Pipeline file (runs its steps when present)" value=t.pipeline_path ctx=f("pipeline_path") />
                        <Check id="svc-no-cache" label="Build without cache (every step runs again)" value=t.no_cache ctx=f("no_cache") />
                        <Check id="svc-supersede" label="A newer push cancels this branch's older pushed runs" value=t.supersede_runs ctx=f("supersede_runs") />
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"Runtime"</legend>
                    <div hidden=worker>
                        <Text id="svc-port" label="Container port (an image service may leave it empty: no route)" value=t.port ctx=f("port") range=r(limits::PORT) />
                        <Text id="svc-domain" label="Domain (empty: <service>.<project>.localhost)" value=t.domain ctx=f("domain") />
                        <Check id="svc-https-redirect" label="Redirect HTTP to HTTPS (308; ACME challenge paths excepted; from the next deploy)" value=t.https_redirect ctx=f("https_redirect") />
                        <Check id="svc-hsts" label="Send HSTS on HTTPS (Strict-Transport-Security, one year; from the next deploy)" value=t.hsts ctx=f("hsts") />
                    </div>
                    <Area id="svc-command" label="Command (one argument per line, no shell; empty: the image's)" value=t.command ctx=f("command") />
                    <Area id="svc-volumes" label="Volumes (name:/path/in/container per line; kept across deploys and rollbacks)" value=t.volumes ctx=f("volumes") />
                    <Text id="svc-deploy-after" label="Deploy after (services of this project, comma-separated; orders Deploy all)" value=t.deploy_after ctx=f("deploy_after") />
                    <Area id="svc-ports" label="Published ports (host:container per line, /udp for UDP; e.g. 8005:8000)" value=t.ports ctx=f("ports") />
                    <Text id="svc-memory" label="Memory limit (MB)" value=t.memory_mb ctx=f("memory_mb") range=r(limits::MEMORY_MB) />
                    <Text id="svc-cpu" label="CPU limit (millicores)" value=t.cpu_millis ctx=f("cpu_millis") range=r(limits::CPU_MILLIS) />
                    <Text id="svc-drain" label="Drain time (s)" value=t.drain_secs ctx=f("drain_secs") range=r(limits::DRAIN_SECS) />
                    <Text id="svc-build-timeout" label="Build timeout (s)" value=t.build_timeout_secs ctx=f("build_timeout_secs") range=r(limits::BUILD_TIMEOUT_SECS) />
                    <Check id="svc-auto-deploy" label="Deploy automatically after every successful build (unless started as Build only)" value=t.auto_deploy ctx=f("auto_deploy") />
                </fieldset>
                <fieldset>
                    <legend>"Health check"</legend>
                    <div class="field">
                        <label for="svc-health-kind">"Kind"</label>
                        <select
                            id="svc-health-kind"
                            prop:value=move || t.health_kind.get()
                            on:change=move |ev| t.health_kind.set(event_target_value(&ev))
                        >
                            <option value="http" selected=is_http()>"HTTP request"</option>
                            <option value="command" selected=move || t.health_kind.get() == "command">"Command in the container"</option>
                            <option value="none" selected=is_none disabled=move || kind() == "web">"None: running for the settle time"</option>
                        </select>
                    </div>
                    <div hidden=move || !is_none()>
                        <Text id="svc-settle" label="Settle time (s): running this long without a restart is healthy" value=t.settle_secs ctx=f("settle_secs") />
                    </div>
                    <div hidden=move || !is_http()>
                        <Text id="svc-health-path" label="HTTP path" value=t.health_path ctx=f("health_path") />
                    </div>
                    <div hidden=move || t.health_kind.get() != "command">
                        <Area id="svc-health-command" label="Command (one argument per line, no shell)" value=t.health_command ctx=f("health_command") />
                    </div>
                    <Text id="svc-health-interval" label="Interval (ms)" value=t.health_interval_ms ctx=f("health_interval_ms") range=r(limits::HEALTH_INTERVAL_MS) />
                    <Text id="svc-health-timeout" label="Timeout (ms)" value=t.health_timeout_ms ctx=f("health_timeout_ms") range=r(limits::HEALTH_TIMEOUT_MS) />
                    <Text id="svc-health-retries" label="Retries" value=t.health_retries ctx=f("health_retries") range=r(limits::HEALTH_RETRIES) />
                    <Text id="svc-health-start" label="Start period (ms)" value=t.health_start_period_ms ctx=f("health_start_period_ms") range=r(limits::HEALTH_START_PERIOD_MS) />
                </fieldset>
                <fieldset>
                    <legend>"Environment"</legend>
                    <EnvEditor env=t.env />
                    <FieldErrors ctx=f("env") input="env-editor" />
                </fieldset>
                <div class="form-end">
                    {move || {
                        let general = general.get();
                        let extra: Vec<FieldError> = errors.get().into_iter().filter(|e| !is_known(&e.field)).collect();
                        (general.is_some() || !extra.is_empty()).then(|| view! {
                            <div id="svc-error" class="error" role="alert">
                                {general.map(|g| view! { <p>{g}</p> }.into_any())}
                                {extra.into_iter().map(field_error_view).collect_view()}
                            </div>
                        }.into_any())
                    }}
                    {move || saved.get().then(|| view! { <p id="svc-saved" class="ok" role="status">"Saved."</p> }.into_any())}
                    {editable.then(|| view! {
                        <button id="svc-save" type="submit" disabled=move || saving.pending()>{submit_label.clone()}</button>
                    }.into_any())}
                </div>
            </fieldset>
        </form>
    }
    .into_any()
}

/// Which field an input reports and where the errors are.
#[derive(Clone, Copy)]
struct FieldCtx {
    field: &'static str,
    errors: RwSignal<Vec<FieldError>>,
}

impl FieldCtx {
    fn has_error(&self) -> bool {
        let names = aliases(self.field);
        self.errors.with(|e| e.iter().any(|e| names.contains(&e.field.as_str())))
    }
}

fn field_error_view(e: FieldError) -> AnyView {
    view! { <p class="field-error" data-field=e.field>{sentence(&e.message)}</p> }.into_any()
}

/// A number input's range, as the server checks it.
fn r<T: Into<u64>>((lo, hi): (T, T)) -> (u64, u64) {
    (lo.into(), hi.into())
}

/// The errors of one input: `div.field-errors#<input>-error` with one
/// `p.field-error[data-field]` per message, present only with an error.
#[component]
fn FieldErrors(ctx: FieldCtx, input: &'static str) -> impl IntoView {
    move || {
        let names = aliases(ctx.field);
        let mine: Vec<FieldError> =
            ctx.errors.get().into_iter().filter(|e| names.contains(&e.field.as_str())).collect();
        (!mine.is_empty()).then(|| {
            view! {
                <div class="field-errors" id=format!("{input}-error")>
                    {mine.into_iter().map(field_error_view).collect_view()}
                </div>
            }
            .into_any()
        })
    }
}

#[component]
fn Text(
    id: &'static str,
    label: &'static str,
    value: RwSignal<String>,
    ctx: FieldCtx,
    /// A number input with this range (`min`/`max`, as the server checks).
    #[prop(optional)]
    range: Option<(u64, u64)>,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type=if range.is_some() { "number" } else { "text" }
                min=range.map(|(lo, _)| lo.to_string())
                max=range.map(|(_, hi)| hi.to_string())
                spellcheck="false"
                aria-invalid=move || ctx.has_error().then_some("true")
                aria-describedby=move || ctx.has_error().then(|| format!("{id}-error"))
                value=value.get_untracked()
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            <FieldErrors ctx input=id />
        </div>
    }
    .into_any()
}

#[component]
fn Check(id: &'static str, label: &'static str, value: RwSignal<bool>, ctx: FieldCtx) -> impl IntoView {
    view! {
        <div class="field check">
            <input
                id=id
                type="checkbox"
                checked=value.get_untracked()
                prop:checked=move || value.get()
                on:change=move |ev| value.set(event_target_checked(&ev))
            />
            <label for=id>{label}</label>
            <FieldErrors ctx input=id />
        </div>
    }
    .into_any()
}

#[component]
fn Area(id: &'static str, label: &'static str, value: RwSignal<String>, ctx: FieldCtx) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <textarea
                id=id
                rows="3"
                spellcheck="false"
                aria-invalid=move || ctx.has_error().then_some("true")
                aria-describedby=move || ctx.has_error().then(|| format!("{id}-error"))
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            >
                {value.get_untracked()}
            </textarea>
            <FieldErrors ctx input=id />
        </div>
    }
    .into_any()
}
