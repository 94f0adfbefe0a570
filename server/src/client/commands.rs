//! The client subcommands. Each prints a short human line per object (or
//! JSON with `--json`) and exits non-zero when the API refuses or a waited-for
//! build or deployment does not succeed.

use std::{process::ExitCode, time::Duration};

use anyhow::{bail, Context};
use app::wire::{BuildView, DeploymentView, HistoryPage, LogLineView};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::{sse, Client};

/// Where and as whom the client commands run.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// The Slipway server.
    #[arg(long, env = "SLIPWAY_URL", default_value = "http://127.0.0.1:3000", global = true)]
    pub url: String,
    /// An API token (create one in the dashboard under Account).
    #[arg(long, env = "SLIPWAY_TOKEN", hide_env_values = true, default_value = "", global = true)]
    pub token: String,
    /// Print the API's JSON instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Queue a build of a service (`id`, `project/service` or a unique name).
    Build {
        service: String,
        /// Branch, tag or commit; the service's branch by default.
        #[arg(long = "ref")]
        git_ref: Option<String>,
        /// Deploy the image once built, even when the service does not
        /// deploy automatically.
        #[arg(long, conflicts_with = "build_only")]
        deploy: bool,
        /// Build only: do not deploy, even when the service deploys
        /// automatically after every successful build.
        #[arg(long)]
        build_only: bool,
        /// Build every step again, ignoring the build cache (this build only).
        #[arg(long)]
        no_cache: bool,
        /// Follow the log until the build ends; fail if it does not succeed.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Deploy a build (default: the newest successful one) or an image.
    Deploy {
        service: String,
        /// Build id to deploy.
        #[arg(long, conflicts_with = "image")]
        build: Option<i64>,
        /// An image already in the Docker engine.
        #[arg(long)]
        image: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        /// Wait until the deployment is live or failed.
        #[arg(long)]
        wait: bool,
    },
    /// Roll back to an earlier deployment (default: the newest one that
    /// served before the live one), image and config.
    Rollback {
        service: String,
        /// Deployment id to roll back to.
        #[arg(long)]
        to: Option<i64>,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Print a build's log, or with `--service` the live container's log;
    /// `-f` follows it (until the build ends, or the container stops or is
    /// replaced).
    Logs {
        #[arg(required_unless_present = "service")]
        build_id: Option<i64>,
        /// A service (`id`, `project/service` or a unique name): its live
        /// container's log.
        #[arg(long, conflicts_with = "build_id")]
        service: Option<String>,
        #[arg(long, short = 'f')]
        follow: bool,
        /// With `--service`: the last N lines first (default 200).
        #[arg(long, requires = "service")]
        tail: Option<u32>,
        /// With `--service`: only lines since a time (RFC 3339) or an age (`15m`).
        #[arg(long, requires = "service")]
        since: Option<String>,
    },
    /// List a service's recent builds.
    Builds { service: String },
    /// Print a build's pipeline report: status, each step with its status,
    /// duration and exit code, the services with their health.
    Report { build_id: i64 },
    /// List a service's recent deployments.
    Deployments { service: String },
    /// Build every service of a project that builds its own image (`id` or name).
    BuildAll { project: String },
    /// Deploy every service of a project in `deploy_after` order (`id` or name).
    DeployAll {
        project: String,
        /// Wait until every deployment settled; fail if one did not go live.
        #[arg(long)]
        wait: bool,
    },
}

pub async fn run(remote: &Remote, command: ClientCommand) -> ExitCode {
    match execute(remote, command).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("slipway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; `Ok(false)` when a waited-for outcome was a failure.
async fn execute(remote: &Remote, command: ClientCommand) -> anyhow::Result<bool> {
    let client = Client::new(&remote.url, &remote.token)?;
    match command {
        ClientCommand::Build { service, git_ref, deploy, build_only, no_cache, follow } => {
            let id = client.service_id(&service).await?;
            let body =
                json!({ "ref": git_ref, "deploy": deploy, "build_only": build_only, "no_cache": no_cache });
            let build: BuildView = client.post(&format!("api/v1/services/{id}/builds"), &body).await?;
            print_build(remote, &build)?;
            if follow {
                let status = follow_log(&client, build.id, 0).await?;
                println!("build #{} {status}", build.number);
                return Ok(status == "succeeded");
            }
            Ok(true)
        }
        ClientCommand::Deploy { service, build, image, reason, wait } => {
            let id = client.service_id(&service).await?;
            let body = json!({ "build_id": build, "image": image, "reason": reason });
            let d: DeploymentView = client.post(&format!("api/v1/services/{id}/deployments"), &body).await?;
            finish_deployment(remote, &client, d, wait).await
        }
        ClientCommand::Rollback { service, to, reason, wait } => {
            let id = client.service_id(&service).await?;
            let target = match to {
                Some(t) => t,
                None => previous_served(&client, id).await?,
            };
            let d: DeploymentView = client
                .post(&format!("api/v1/deployments/{target}/rollback"), &json!({ "reason": reason }))
                .await?;
            finish_deployment(remote, &client, d, wait).await
        }
        ClientCommand::Logs { service: Some(service), follow, tail, since, .. } => {
            let id = client.service_id(&service).await?;
            super::runtime_logs::print(&client, id, follow, tail, since.as_deref()).await
        }
        ClientCommand::Logs { build_id, follow, .. } => {
            let build_id = build_id.context("give a build id or --service")?;
            if follow {
                let status = follow_log(&client, build_id, 0).await?;
                println!("build {status}");
                return Ok(status == "succeeded");
            }
            let lines: Vec<LogLineView> = client.get(&format!("api/v1/builds/{build_id}/log")).await?;
            for line in lines {
                println!("{}", line.text);
            }
            Ok(true)
        }
        ClientCommand::Builds { service } => {
            let id = client.service_id(&service).await?;
            let page: HistoryPage<BuildView> = client.get(&format!("api/v1/services/{id}/builds")).await?;
            for b in &page.items {
                print_build(remote, b)?;
            }
            Ok(true)
        }
        ClientCommand::Report { build_id } => {
            let report: serde_json::Value = client.get(&format!("api/v1/builds/{build_id}/report")).await?;
            if remote.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", super::report::text(&serde_json::from_value(report)?));
            }
            Ok(true)
        }
        ClientCommand::BuildAll { project } => {
            let id = client.project_id(&project).await?;
            let queued: app::wire::BuildAllView =
                client.post(&format!("api/v1/projects/{id}/build-all"), &json!({})).await?;
            if remote.json {
                println!("{}", serde_json::to_string(&queued)?);
            } else {
                println!("{} build(s) queued: {:?}", queued.build_ids.len(), queued.build_ids);
            }
            Ok(true)
        }
        ClientCommand::DeployAll { project, wait } => {
            let id = client.project_id(&project).await?;
            let action: app::wire::ActionView =
                client.post(&format!("api/v1/projects/{id}/deploy-all"), &json!({})).await?;
            let job = action.job_id.context("the server answered no job")?;
            println!("deploy all queued (job {job})");
            if !wait {
                return Ok(true);
            }
            loop {
                let j: app::wire::JobView = client.get(&format!("api/v1/jobs/{job}")).await?;
                if !matches!(j.status.as_str(), "queued" | "running") {
                    println!(
                        "deploy all {}{}",
                        j.status,
                        j.error.map(|e| format!(": {e}")).unwrap_or_default()
                    );
                    return Ok(j.status == "succeeded");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        ClientCommand::Deployments { service } => {
            let id = client.service_id(&service).await?;
            let page: HistoryPage<DeploymentView> =
                client.get(&format!("api/v1/services/{id}/deployments")).await?;
            for d in &page.items {
                print_deployment(remote, d)?;
            }
            Ok(true)
        }
    }
}

fn print_build(remote: &Remote, b: &BuildView) -> anyhow::Result<()> {
    if remote.json {
        println!("{}", serde_json::to_string(b)?);
    } else {
        let commit = b.commit_sha.as_deref().map_or("", |c| &c[..c.len().min(12)]);
        println!("build #{} (id {}) {} {} {}", b.number, b.id, b.status, b.git_ref, commit);
    }
    Ok(())
}

fn print_deployment(remote: &Remote, d: &DeploymentView) -> anyhow::Result<()> {
    if remote.json {
        println!("{}", serde_json::to_string(d)?);
    } else {
        let build = d.build_number.map(|n| format!("build #{n}")).unwrap_or_else(|| "image".into());
        let reason = d.reason.as_deref().unwrap_or("");
        println!("deployment {} {} {} {}", d.id, d.status, build, reason);
    }
    Ok(())
}

/// Prints the deployment; with `wait`, polls until it is live or failed.
async fn finish_deployment(
    remote: &Remote,
    client: &Client,
    mut d: DeploymentView,
    wait: bool,
) -> anyhow::Result<bool> {
    print_deployment(remote, &d)?;
    if !wait {
        return Ok(true);
    }
    while d.is_active() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        d = client.get(&format!("api/v1/deployments/{}", d.id)).await?;
    }
    print_deployment(remote, &d)?;
    if let Some(error) = &d.error {
        eprintln!("{error}");
    }
    Ok(d.status == "live")
}

/// The newest deployment that served traffic and is not live.
async fn previous_served(client: &Client, service_id: i64) -> anyhow::Result<i64> {
    let page: HistoryPage<DeploymentView> =
        client.get(&format!("api/v1/services/{service_id}/deployments?limit=100")).await?;
    match page.items.iter().find(|d| d.can_roll_back_to()) {
        Some(d) => Ok(d.id),
        None => bail!("no earlier deployment served traffic; nothing to roll back to"),
    }
}

/// Prints the log live (SSE, resuming after a dropped connection) and
/// returns the build's final status.
async fn follow_log(client: &Client, build_id: i64, mut after: u64) -> anyhow::Result<String> {
    let mut retries = 0;
    loop {
        let req =
            client.request(Method::GET, &format!("api/v1/builds/{build_id}/log/stream?after={after}"))?;
        let response = req.send().await.context("cannot reach the Slipway server")?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default();
            return Err(super::refusal(status, &body).into());
        }
        let mut end = None;
        let followed = sse::follow(response, |ev| match ev.event.as_str() {
            "line" => {
                let line: LogLineView = serde_json::from_str(&ev.data).context("bad log line")?;
                after = line.seq;
                println!("{}", line.text);
                Ok(true)
            }
            "end" => {
                let v: serde_json::Value = serde_json::from_str(&ev.data).context("bad end event")?;
                end = Some(v["status"].as_str().unwrap_or("unknown").to_string());
                Ok(false)
            }
            _ => Ok(true),
        })
        .await;
        if let Some(status) = end {
            return Ok(status);
        }
        retries += 1;
        match followed {
            Err(e) if retries > 5 => return Err(e),
            Err(e) => eprintln!("(log stream interrupted, resuming: {e:#})"),
            Ok(()) if retries > 5 => bail!("the log stream kept ending before the build did"),
            Ok(()) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
