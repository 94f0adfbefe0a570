//! The integrations' part of the `Backend` port: jobs, API tokens, audit
//! (tokens and audit events are wire types already).

use app::{
    wire::{
        AuditEventView, AuditQuery, Caller, DeliveryView, HistoryPage, JobView, NewNotificationTarget,
        NewToken, NotificationDeliveryView, NotificationTargetView, NotificationsPageView,
        ProjectWebhookView, TokenView, WebhookInfoView,
    },
    AppError,
};

use super::{errors, ServerBackend};
use crate::{
    audit,
    history::Page,
    jobs::Job,
    notify::{DeliveryRecord, NewTarget, NotificationTarget},
    webhooks::{Delivery, WebhookInfo},
};

fn webhook_view(w: WebhookInfo) -> WebhookInfoView {
    WebhookInfoView {
        service_id: w.service_id,
        github: w.paths.github,
        gitlab: w.paths.gitlab,
        gitea: w.paths.gitea,
        secret: w.secret,
    }
}

pub(super) fn deliveries_page(page: Page<Delivery>) -> HistoryPage<DeliveryView> {
    HistoryPage { items: page.items.into_iter().map(delivery_view).collect(), next: page.next }
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        id: d.id,
        forge: d.forge,
        delivery_id: d.delivery_id,
        event: d.event,
        status: d.status,
        reason: d.reason,
        build_id: d.build_id,
        received_at: d.received_at,
    }
}

fn target_view(t: NotificationTarget) -> NotificationTargetView {
    NotificationTargetView {
        id: t.id,
        project_id: t.project_id,
        name: t.name,
        kind: t.kind.as_str().to_string(),
        url_masked: t.url_masked,
        events: t.events,
        created_at: t.created_at,
    }
}

type Res<T> = Result<T, AppError>;

fn job_view(j: Job) -> JobView {
    JobView {
        id: j.id,
        kind: j.kind,
        service_id: j.service_id,
        status: j.status.as_str().to_string(),
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        phase: j.phase,
        progress: j.progress,
        cancel_requested: j.cancel_requested,
        error: j.last_error,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
    }
}

impl ServerBackend {
    pub(super) async fn job(&self, caller: &Caller, job_id: i64) -> Res<JobView> {
        let job = self.engine()?.get_job(caller, job_id).await.map_err(errors::engine)?;
        Ok(job_view(job))
    }

    pub(super) async fn tokens(&self, caller: &Caller) -> Res<Vec<TokenView>> {
        let tokens = self.auth()?.tokens.list(caller).await.map_err(errors::token)?;
        Ok(tokens)
    }

    pub(super) async fn new_token(&self, caller: &Caller, name: &str, days: Option<u32>) -> Res<NewToken> {
        let (info, token) = self.auth()?.tokens.create(caller, name, days).await.map_err(errors::token)?;
        Ok(NewToken { token, info })
    }

    pub(super) async fn revoke(&self, caller: &Caller, token_id: i64) -> Res<TokenView> {
        self.auth()?.tokens.revoke(caller, token_id).await.map_err(errors::token)
    }

    pub(super) async fn audit_events(&self, caller: &Caller, q: AuditQuery) -> Res<Vec<AuditEventView>> {
        let filter = audit::Filter {
            actor: q.actor.filter(|s| !s.is_empty()),
            action: q.action.filter(|s| !s.is_empty()),
            source: q.source.filter(|s| !s.is_empty()),
            before: q.before,
            limit: q.limit,
        };
        audit::list(&self.auth()?.db, caller, &filter).await.map_err(errors::audit)
    }

    pub(super) async fn webhook(
        &self,
        caller: &Caller,
        service_id: i64,
        rotate: bool,
    ) -> Res<WebhookInfoView> {
        let engine = self.engine()?;
        let info = if rotate {
            engine.rotate_webhook_secret(caller, service_id).await
        } else {
            engine.webhook_info(caller, service_id).await
        };
        Ok(webhook_view(info.map_err(errors::engine)?))
    }

    pub(super) async fn project_webhook(
        &self,
        caller: &Caller,
        project_id: i64,
        rotate: bool,
    ) -> Res<ProjectWebhookView> {
        let engine = self.engine()?;
        let info = if rotate {
            engine.rotate_project_webhook_secret(caller, project_id).await
        } else {
            engine.project_webhook_info(caller, project_id).await
        };
        let w = info.map_err(errors::engine)?;
        Ok(ProjectWebhookView {
            project_id: w.project_id,
            github: w.paths.github,
            gitlab: w.paths.gitlab,
            gitea: w.paths.gitea,
            secret: w.secret,
        })
    }

    pub(super) async fn project_deliveries(
        &self,
        caller: &Caller,
        project_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeliveryView>> {
        let page = self
            .engine()?
            .list_project_deliveries(caller, project_id, before, limit)
            .await
            .map_err(errors::engine)?;
        Ok(deliveries_page(page))
    }

    pub(super) async fn deliveries(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeliveryView>> {
        let page = self
            .engine()?
            .list_deliveries(caller, service_id, before, limit)
            .await
            .map_err(errors::engine)?;
        Ok(deliveries_page(page))
    }

    pub(super) async fn targets(&self, caller: &Caller, project_id: i64) -> Res<Vec<NotificationTargetView>> {
        let targets =
            self.engine()?.list_notification_targets(caller, project_id).await.map_err(errors::engine)?;
        Ok(targets.into_iter().map(target_view).collect())
    }

    pub(super) async fn new_target(
        &self,
        caller: &Caller,
        project_id: i64,
        t: NewNotificationTarget,
    ) -> Res<NotificationTargetView> {
        let new = NewTarget { name: t.name, kind: t.kind, url: t.url, events: t.events };
        let target = self
            .engine()?
            .create_notification_target(caller, project_id, new)
            .await
            .map_err(errors::engine)?;
        Ok(target_view(target))
    }

    pub(super) async fn delete_target(&self, caller: &Caller, target_id: i64) -> Res<()> {
        self.engine()?.delete_notification_target(caller, target_id).await.map_err(errors::engine)
    }

    pub(super) async fn notify_page(&self, caller: &Caller, project_id: i64) -> Res<NotificationsPageView> {
        let o = self.engine()?.notifications_overview(caller, project_id).await.map_err(errors::engine)?;
        Ok(NotificationsPageView {
            project_id: o.project.id,
            project_name: o.project.name,
            targets: o.targets.into_iter().map(target_view).collect(),
            deliveries: o.deliveries.into_iter().map(notification_delivery_view).collect(),
        })
    }

    pub(super) async fn test_target(&self, caller: &Caller, target_id: i64) -> Res<NotificationDeliveryView> {
        let record =
            self.engine()?.send_test_notification(caller, target_id).await.map_err(errors::engine)?;
        Ok(notification_delivery_view(record))
    }
}

fn notification_delivery_view(d: DeliveryRecord) -> NotificationDeliveryView {
    NotificationDeliveryView {
        id: d.id,
        target_id: d.target_id,
        event: d.event,
        attempt: d.attempt,
        ok: d.ok,
        http_status: d.http_status,
        error: d.error,
        at: d.at,
    }
}
