//! A verified delivery's effect: pings answered, other events ignored, a
//! push to a service hook builds that service, a push to a project hook
//! builds every matching service of the project as one group
//! ([`crate::webhooks::fanout`]).

use serde_json::Value;

use super::{Accepted, Hook, HookError, Target};
use crate::webhooks::{
    deliveries::{self, Claim, Received, BUILT, CLAIMED, DUPLICATE, IGNORED, PING},
    fanout,
    payload::{self, EventKind, PayloadError, Push},
};
use crate::{
    audit::{self, Event, Source},
    builds::TriggerBuild,
    engine::Engine,
};

/// A verified, well-formed delivery: its effect by event.
pub(super) async fn dispatch(
    engine: &Engine,
    service: &Target,
    rec: &Received,
    event: &str,
    payload: &Value,
) -> Result<Accepted, HookError> {
    match payload::classify(rec.forge, event) {
        EventKind::Ping => settle(engine, rec, PING, "ping answered".into()).await,
        EventKind::Other => settle(engine, rec, IGNORED, format!("event {event} is not handled")).await,
        EventKind::Push => {
            if rec.delivery_id.is_none() && rec.idempotency_key.is_none() {
                return Err(PayloadError::NoDeliveryId.into());
            }
            match &service.hook {
                Hook::Service { id, branch, auto_deploy } => match payload::push(rec.forge, payload, branch)?
                {
                    Push::Ignore(reason) => settle(engine, rec, IGNORED, reason).await,
                    Push::Build { sha } => build(engine, (*id, *auto_deploy), rec, sha).await,
                },
                Hook::Project { id } => fan_out(engine, *id, rec, payload).await,
            }
        }
    }
}

fn duplicate(reason: String) -> Accepted {
    Accepted { status: DUPLICATE, reason, build_id: None, build_ids: Vec::new() }
}

/// Records a delivery that needs nothing done, claiming its id.
async fn settle(
    engine: &Engine,
    rec: &Received,
    status: &'static str,
    reason: String,
) -> Result<Accepted, HookError> {
    match deliveries::claim(&engine.db, rec, status, &reason).await.map_err(anyhow::Error::from)? {
        Claim::Won(_) => Ok(Accepted { status, reason, build_id: None, build_ids: Vec::new() }),
        Claim::Duplicate(why) => Ok(duplicate(why)),
    }
}

/// Claims the id, queues the build, links the two (see the module docs).
async fn build(
    engine: &Engine,
    (service_id, auto_deploy): (i64, bool),
    rec: &Received,
    sha: String,
) -> Result<Accepted, HookError> {
    let claim = deliveries::claim(&engine.db, rec, CLAIMED, "queueing a build").await;
    let row = match claim.map_err(anyhow::Error::from)? {
        Claim::Won(row) => row,
        Claim::Duplicate(why) => return Ok(duplicate(why)),
    };
    let actor = format!("webhook:{}", rec.forge.as_str());
    let deploy = auto_deploy;
    let req = TriggerBuild {
        service_id,
        git_ref: Some(sha.clone()),
        trigger: "webhook".into(),
        deploy: false,
        build_only: false,
        no_cache: false,
        group: None,
    };
    let build = match engine.enqueue_build(&actor, req).await {
        Ok(build) => build,
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot queue the build");
            deliveries::release(&engine.db, row, &format!("the build could not be queued: {e}")).await;
            return Err(HookError::Queue);
        }
    };
    let then = if deploy { ", then deploy" } else { "" };
    let reason = format!("build #{} of {sha}{then}", build.number);
    if let Err(e) = deliveries::finish(&engine.db, row, BUILT, &reason, Some(build.id)).await {
        // The build is queued; the record keeps saying `claimed`.
        tracing::error!(error = %e, build_id = build.id, "webhook: cannot link the delivery to its build");
    }
    let delivery = rec.delivery_id.as_deref().or(rec.idempotency_key.as_deref()).unwrap_or("-");
    audit::record(
        &engine.db,
        Event::from(actor, Source::Webhook, "build.trigger")
            .target(format!("build:{}", build.id))
            .detail(format!("service:{service_id} ref {sha} delivery {delivery}")),
    )
    .await;
    Ok(Accepted { status: BUILT, reason, build_id: Some(build.id), build_ids: vec![build.id] })
}

/// A push to a project hook: the services of `project_id` that build the
/// pushed repository at the pushed branch, each built once from one shared
/// checkout (their builds are one group, named after the delivery record).
async fn fan_out(
    engine: &Engine,
    project_id: i64,
    rec: &Received,
    payload: &Value,
) -> Result<Accepted, HookError> {
    let pushed = match payload::branch_push(rec.forge, payload)? {
        Ok(pushed) => pushed,
        Err(reason) => return settle(engine, rec, IGNORED, reason).await,
    };
    let sha = match pushed.push {
        Push::Build { sha } => sha,
        Push::Ignore(reason) => return settle(engine, rec, IGNORED, reason).await,
    };
    let urls = payload::repository_urls(rec.forge, payload);
    if urls.is_empty() {
        return Err(PayloadError::MissingField("repository").into());
    }
    let services = fanout::matching_services(engine, project_id, &pushed.branch, &urls).await?;
    if services.is_empty() {
        let reason =
            format!("no service of this project builds the pushed repository at branch {}", pushed.branch);
        return settle(engine, rec, IGNORED, reason).await;
    }
    let claim = deliveries::claim(&engine.db, rec, CLAIMED, "queueing builds").await;
    let row = match claim.map_err(anyhow::Error::from)? {
        Claim::Won(row) => row,
        Claim::Duplicate(why) => return Ok(duplicate(why)),
    };
    let actor = format!("webhook:{}", rec.forge.as_str());
    let group = format!("push-{row}");
    let (queued, failed) = fanout::queue_builds(engine, &actor, &services, &sha, &group).await;
    if queued.is_empty() {
        let why: Vec<String> = failed.iter().map(|(name, e)| format!("{name}: {e}")).collect();
        deliveries::release(&engine.db, row, &format!("no build could be queued ({})", why.join("; "))).await;
        return Err(HookError::Queue);
    }
    let mut reason = format!(
        "builds of {sha}: {}",
        queued.iter().map(|(b, name)| format!("{name} #{}", b.number)).collect::<Vec<_>>().join(", ")
    );
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|(name, _)| name.as_str()).collect();
        reason.push_str(&format!("; not queued: {}", names.join(", ")));
    }
    let first = queued.first().map(|(b, _)| b.id);
    if let Err(e) = deliveries::finish(&engine.db, row, BUILT, &reason, first).await {
        tracing::error!(error = %e, "webhook: cannot link the delivery to its builds");
    }
    let delivery = rec.delivery_id.as_deref().or(rec.idempotency_key.as_deref()).unwrap_or("-");
    for (build, _) in &queued {
        audit::record(
            &engine.db,
            Event::from(actor.clone(), Source::Webhook, "build.trigger")
                .target(format!("build:{}", build.id))
                .detail(format!(
                    "service:{} ref {sha} delivery {delivery} project:{project_id}",
                    build.service_id
                )),
        )
        .await;
    }
    let build_ids = queued.iter().map(|(b, _)| b.id).collect();
    Ok(Accepted { status: BUILT, reason, build_id: first, build_ids })
}
