//! Following a deployment that was just started, until it settles; the
//! question asked before deploying past a rollback.

use leptos::prelude::window;

use crate::{
    api::deploys::get_deployment,
    components::{browser, status_label},
    wire::DeploymentView,
};

/// Polls the deployment every second until it is no longer pending or
/// starting (10 minutes at most). `None` when `alive` says the page is gone,
/// or it never settled. (`alive` is `dyn`: one copy of this future in the
/// bundle for every caller.)
pub async fn settled(deployment_id: i64, alive: &dyn Fn() -> bool) -> Option<DeploymentView> {
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
        Some(err) if d.status != "live" => {
            format!("Deployment #{} {}: {}", d.id, status_label(&d.status), err)
        }
        _ => format!("Deployment #{} is {}.", d.id, status_label(&d.status)),
    }
}

/// The live deployment as "deploy the newest build" needs it: its id,
/// `rollback_of` and build number.
pub struct Live {
    pub id: i64,
    pub rollback_of: Option<i64>,
    pub build_number: Option<i64>,
}

/// When the live deployment is a rollback and `newest` (the newest
/// successful build's number) is newer than its build, the question to ask
/// before deploying `newest`: it is most likely the build rolled back from.
pub fn redeploy_question(live: Option<Live>, newest: Option<i64>) -> Option<String> {
    let (live, newest) = (live?, newest?);
    live.rollback_of?;
    let newer = match live.build_number {
        Some(b) => newest > b,
        None => true,
    };
    newer.then(|| {
        format!("Deployment #{} rolled back from build #{newest}; deploy build #{newest} again?", live.id)
    })
}

/// Asks `question` in the browser's confirm dialog; `true` when there is no
/// question or the user agreed.
pub fn confirmed(question: Option<String>) -> bool {
    match question {
        Some(q) => window().confirm_with_message(&q).unwrap_or(false),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(rollback_of: Option<i64>, build_number: Option<i64>) -> Option<Live> {
        Some(Live { id: 7, rollback_of, build_number })
    }

    #[test]
    fn asks_only_when_a_rollback_is_live_and_a_newer_build_exists() {
        assert_eq!(
            redeploy_question(live(Some(5), Some(2)), Some(3)).as_deref(),
            Some("Deployment #7 rolled back from build #3; deploy build #3 again?")
        );
        assert_eq!(redeploy_question(live(None, Some(2)), Some(3)), None, "not a rollback");
        assert_eq!(redeploy_question(live(Some(5), Some(3)), Some(3)), None, "already that build");
        assert_eq!(redeploy_question(None, Some(3)), None, "nothing live");
        assert_eq!(redeploy_question(live(Some(5), Some(2)), None), None, "no successful build");
    }
}
