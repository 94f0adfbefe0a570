//! The notifications page's use-cases: the project with its targets and
//! their recent deliveries (viewer), and "Send test" (deployer): one POST
//! of a test message now, recorded like any delivery.

use app::wire::{Caller, Role};

use super::{
    deliveries::{self, DeliveryRecord},
    delivery, targets, Message, NotificationTarget,
};
use crate::{
    access::require,
    audit::{self, Event},
    engine::{Engine, EngineError},
    projects::{Project, ProjectStore},
};

/// Deliveries shown per target.
pub const RECENT_PER_TARGET: i64 = 10;

/// A project's notifications as the page shows them.
pub struct NotificationsOverview {
    pub project: Project,
    pub targets: Vec<NotificationTarget>,
    /// The newest [`RECENT_PER_TARGET`] of each target, newest first.
    pub deliveries: Vec<DeliveryRecord>,
}

impl Engine {
    /// The project, its targets (URLs masked) and their recent deliveries
    /// (viewer).
    pub async fn notifications_overview(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Result<NotificationsOverview, EngineError> {
        require(caller, Role::Viewer)?;
        let project = ProjectStore::new(self.db.clone()).get_project(project_id).await?;
        let targets = self.list_notification_targets(caller, project_id).await?;
        let deliveries = deliveries::recent(&self.db, project_id, RECENT_PER_TARGET).await?;
        Ok(NotificationsOverview { project, targets, deliveries })
    }

    /// Sends a test message to a target now and records the delivery
    /// (deployer). A target that fails answers with the failure recorded,
    /// not an error: the page shows it in the target's deliveries.
    pub async fn send_test_notification(
        &self,
        caller: &Caller,
        target_id: i64,
    ) -> Result<DeliveryRecord, EngineError> {
        let actor = require(caller, Role::Deployer)?;
        let target = targets::stored(&self.db, target_id)
            .await?
            .ok_or(EngineError::NotFound("notification target"))?;
        let project: String = sqlx::query_scalar(
            "SELECT p.name FROM notification_targets t JOIN projects p ON p.id = t.project_id WHERE t.id = ?",
        )
        .bind(target_id)
        .fetch_optional(&self.db)
        .await?
        .ok_or(EngineError::NotFound("notification target"))?;
        let message = Message::test(&project);
        let client = delivery::client()?;
        let delivery_id = super::delivery_id();
        let sent = delivery::send(&client, &self.secrets, &target, &delivery_id, &message).await?;
        let record = deliveries::record(&self.db, target_id, &message.event, 1, &sent)
            .await?
            .ok_or(EngineError::NotFound("notification target"))?;
        audit::record(
            &self.db,
            Event::by(caller, "notification.test")
                .target(format!("notification_target:{target_id}"))
                .detail(if record.ok { "delivered".to_string() } else { "failed".to_string() }),
        )
        .await;
        tracing::info!(target_id, %actor, ok = record.ok, "test notification sent");
        Ok(record)
    }
}
