//! Following a deployment that was just started, until it settles.

use crate::{api::deploys::get_deployment, components::browser, wire::DeploymentView};

/// Polls the deployment every second until it is no longer pending or
/// starting (10 minutes at most). `None` when `alive` says the page is gone,
/// or it never settled.
pub async fn settled(deployment_id: i64, alive: impl Fn() -> bool) -> Option<DeploymentView> {
    for _ in 0..600 {
        browser::sleep(1000).await;
        if !alive() {
            return None;
        }
        match get_deployment(deployment_id).await {
            Ok(d) if !d.is_active() => return Some(d),
            _ => {}
        }
    }
    None
}

/// How a settled deployment ended, in one sentence.
pub fn outcome(d: &DeploymentView) -> String {
    match &d.error {
        Some(err) if d.status != "live" => format!("Deployment #{} {}: {}", d.id, d.status, err),
        _ => format!("Deployment #{} is {}.", d.id, d.status),
    }
}
