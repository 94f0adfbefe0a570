//! Domain objects to wire types and back (no rules, no I/O).

use app::wire::{
    BuildView, ConfigView, DeploymentView, EnvVar, HealthProbeForm, PortForm, ServiceDetail, ServiceKindForm,
    ServiceSettings, UserView, VolumeForm,
};

use crate::{
    auth::User,
    builds::{Build, BuildRef},
    catalog::ServiceView,
    deploys::{health_text, service_host, DeployConfig, Deployment},
    logs::{LogLine, LogStream},
    projects::{HealthCheck, HealthProbe, PortSpec, ServiceKind, ServiceSpec, VolumeSpec},
    service_env::{EnvInput, StoredEnv},
};

const MIB: u64 = 1024 * 1024;

pub fn build(b: Build) -> BuildView {
    BuildView {
        id: b.id,
        service_id: b.service_id,
        number: b.number,
        job_id: b.job_id,
        commit_sha: b.commit_sha,
        git_ref: b.git_ref,
        trigger: b.trigger,
        actor: b.actor,
        status: b.status.as_str().to_string(),
        image_id: b.image_id,
        tags: b.tags,
        phase: b.phase,
        progress: b.progress,
        attempt: b.attempt,
        error: b.error,
        created_at: b.created_at,
        started_at: b.started_at,
        finished_at: b.finished_at,
        queued_ms: b.queued_ms,
        duration_ms: b.duration_ms,
        image_removed: b.image_removed_at.is_some(),
        build_only: b.build_only,
        pushed_ref: b.pushed_ref,
    }
}

/// A deployment for the browser; `d` must be masked already. `build` is the
/// build it came from, when known (for its number and commit).
pub fn deployment(d: Deployment, build: Option<&BuildRef>) -> DeploymentView {
    DeploymentView {
        id: d.id,
        service_id: d.service_id,
        build_id: d.build_id,
        job_id: d.job_id,
        build_number: build.map(|b| b.number),
        commit_sha: build.and_then(|b| b.commit_sha.clone()),
        image_id: d.image_id,
        status: d.status.as_str().to_string(),
        reason: d.reason,
        actor: d.actor,
        rollback_of: d.rollback_of,
        error: d.error,
        log_tail: d.log_tail,
        created_at: d.created_at,
        started_at: d.started_at,
        finished_at: d.finished_at,
        duration_ms: d.duration_ms,
        config: config(&d.config),
    }
}

fn config(c: &DeployConfig) -> ConfigView {
    ConfigView {
        env: c.env.iter().map(shown_env).collect(),
        kind: c.kind.as_str().to_string(),
        port: c.port.map(u32::from),
        command: c.command.clone().unwrap_or_default(),
        volumes: c.volumes.iter().map(volume_form).collect(),
        health: health_text(&c.health),
        memory_mb: c.memory_bytes / MIB,
        cpu_millis: c.cpu_millis,
        drain_secs: c.drain_secs,
    }
}

fn shown_env(v: &StoredEnv) -> EnvVar {
    EnvVar { name: v.name.clone(), value: (!v.secret).then(|| v.value.clone()), secret: v.secret }
}

fn volume_form(v: &VolumeSpec) -> VolumeForm {
    VolumeForm { name: v.name.clone(), path: v.path.clone() }
}

pub fn service_detail(v: ServiceView) -> ServiceDetail {
    let host = service_host(&v.project, &v.service);
    let s = v.service.spec;
    ServiceDetail {
        id: v.service.id,
        project_id: v.project.id,
        project: v.project.name,
        host,
        settings: ServiceSettings {
            name: s.name,
            kind: match s.kind {
                ServiceKind::Web => ServiceKindForm::Web,
                ServiceKind::Worker => ServiceKindForm::Worker,
                ServiceKind::Image => ServiceKindForm::Image,
            },
            image: s.image,
            image_from: s.image_from,
            command: s.command.unwrap_or_default(),
            volumes: s.volumes.iter().map(volume_form).collect(),
            ports: s
                .ports
                .into_iter()
                .map(|p| PortForm { host: p.host, container: p.container, protocol: p.protocol })
                .collect(),
            deploy_after: s.deploy_after,
            watch_paths: s.watch_paths,
            settle_secs: s.settle_secs,
            // A password in the URL is a credential: masked, like secrets.
            git_url: crate::validate::redact_url(&s.git_url),
            branch: s.branch,
            context_path: s.context_path,
            dockerfile_path: s.dockerfile_path,
            build_args: s.build_args.into_iter().collect(),
            port: s.port,
            health: match s.health.probe {
                HealthProbe::Http { path } => HealthProbeForm::Http { path },
                HealthProbe::Command { argv } => HealthProbeForm::Command { argv },
                HealthProbe::None => HealthProbeForm::None {},
            },
            health_interval_ms: s.health.interval_ms,
            health_timeout_ms: s.health.timeout_ms,
            health_retries: s.health.retries,
            health_start_period_ms: s.health.start_period_ms,
            memory_mb: s.memory_bytes / MIB,
            cpu_millis: s.cpu_millis,
            auto_deploy: s.auto_deploy,
            build_timeout_secs: s.build_timeout_secs,
            drain_secs: s.drain_secs,
            domain: s.domain,
            target: s.target,
            no_cache: s.no_cache,
            platforms: s.platforms,
            pipeline_path: s.pipeline_path,
            supersede_runs: s.supersede_runs,
            https_redirect: s.https_redirect,
            hsts: s.hsts,
            env: v
                .env
                .into_iter()
                .map(|e| EnvVar { name: e.name, value: e.value, secret: e.secret })
                .collect(),
        },
    }
}

/// The form as the engine takes it: the spec (validated by the engine) and
/// the environment.
pub fn service_spec(s: ServiceSettings) -> (ServiceSpec, Vec<EnvInput>) {
    let spec = ServiceSpec {
        name: s.name,
        kind: match s.kind {
            ServiceKindForm::Web => ServiceKind::Web,
            ServiceKindForm::Worker => ServiceKind::Worker,
            ServiceKindForm::Image => ServiceKind::Image,
        },
        image: s.image,
        image_from: s.image_from,
        command: Some(s.command).filter(|c| !c.is_empty()),
        volumes: s.volumes.into_iter().map(|v| VolumeSpec { name: v.name, path: v.path }).collect(),
        ports: s
            .ports
            .into_iter()
            .map(|p| PortSpec { host: p.host, container: p.container, protocol: p.protocol })
            .collect(),
        deploy_after: s.deploy_after,
        watch_paths: s.watch_paths,
        settle_secs: s.settle_secs,
        git_url: s.git_url,
        branch: s.branch,
        context_path: s.context_path,
        dockerfile_path: s.dockerfile_path,
        // Later duplicates win, as in a .env file; the engine validates names.
        build_args: s.build_args.into_iter().collect(),
        port: s.port,
        health: HealthCheck {
            probe: match s.health {
                HealthProbeForm::Http { path } => HealthProbe::Http { path },
                HealthProbeForm::Command { argv } => HealthProbe::Command { argv },
                HealthProbeForm::None {} => HealthProbe::None,
            },
            interval_ms: s.health_interval_ms,
            timeout_ms: s.health_timeout_ms,
            retries: s.health_retries,
            start_period_ms: s.health_start_period_ms,
        },
        memory_bytes: s.memory_mb.saturating_mul(MIB),
        cpu_millis: s.cpu_millis,
        auto_deploy: s.auto_deploy,
        build_timeout_secs: s.build_timeout_secs,
        drain_secs: s.drain_secs,
        domain: s.domain,
        target: s.target.filter(|t| !t.is_empty()),
        no_cache: s.no_cache,
        platforms: s.platforms,
        pipeline_path: s.pipeline_path,
        supersede_runs: s.supersede_runs,
        https_redirect: s.https_redirect,
        hsts: s.hsts,
    };
    let env =
        s.env.into_iter().map(|e| EnvInput { name: e.name, value: e.value, secret: e.secret }).collect();
    (spec, env)
}

pub fn log_line(l: LogLine) -> app::wire::LogLineView {
    let stream = match l.stream {
        LogStream::Stdout => "stdout",
        LogStream::Stderr => "stderr",
        LogStream::System => "system",
    };
    app::wire::LogLineView { seq: l.seq, ts: l.ts, stream: stream.to_string(), text: l.text, step: l.step }
}

pub fn user(u: User) -> UserView {
    UserView { id: u.id, name: u.name, role: u.role, disabled: u.disabled, created_at: u.created_at }
}
