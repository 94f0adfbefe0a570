//! The port the server functions call (server side only). The `server` crate
//! implements it and provides it as `Arc<dyn Backend>` context; each method is
//! one use-case and takes the caller's identity.

use std::sync::Arc;

use leptos::prelude::*;

use crate::{
    error::AppError,
    wire::{
        ActionView, AuditEventView, AuditQuery, BuildAllView, BuildDetail, BuildPageView, BuildPoint,
        BuildReport, BuildRow, BuildView, Caller, CertificateForm, CertificateView, DeliveryView,
        DeploymentEventView, DeploymentPageView, DeploymentRow, DeploymentView, HistoryPage, JobView,
        LogLineView, NewNotificationTarget, NewToken, NotificationDeliveryView, NotificationTargetView,
        NotificationsPageView, ProjectView, ProjectWebhookView, RegistryForm, RegistryView, Role,
        RollbackPlanView, RuntimeView, ServiceDetail, ServicePageView, ServiceSettings, SetupInfo,
        SystemStatus, TokenView, UserView, VolumeView, WebhookInfoView,
    },
};

type Res<T> = Result<T, AppError>;

#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn system_status(&self, caller: &Caller) -> Result<SystemStatus, AppError>;

    /// Signs in on the request's session (its id is cycled) and returns the
    /// new caller. `request` carries the session and the client address.
    async fn login(
        &self,
        request: &http::request::Parts,
        name: String,
        password: String,
    ) -> Result<Caller, AppError>;

    /// Ends the request's session (anonymous callers too: it is harmless).
    async fn logout(&self, caller: &Caller, request: &http::request::Parts) -> Result<(), AppError>;

    /// Who the caller is, as the server resolved it.
    async fn whoami(&self, caller: &Caller) -> Result<Caller, AppError>;

    // ---------------------------------------------------------- first run --
    async fn setup_state(&self) -> Res<SetupInfo>;
    /// Creates the first admin when `token` matches the one-time token and no
    /// user exists yet, and signs them in on the request's session.
    async fn setup_admin(
        &self,
        request: &http::request::Parts,
        token: String,
        name: String,
        password: String,
    ) -> Res<Caller>;

    // ------------------------------------------------- projects, services --
    async fn overview(&self, caller: &Caller) -> Res<Vec<ProjectView>>;
    async fn create_project(&self, caller: &Caller, name: String) -> Res<ProjectView>;
    async fn create_service(
        &self,
        caller: &Caller,
        project_id: i64,
        settings: ServiceSettings,
    ) -> Res<ServiceDetail>;
    async fn get_service(&self, caller: &Caller, service_id: i64) -> Res<ServiceDetail>;
    async fn update_service(
        &self,
        caller: &Caller,
        service_id: i64,
        settings: ServiceSettings,
    ) -> Res<ServiceDetail>;
    /// The service page: service, chart and first history pages, one read.
    async fn service_page(&self, caller: &Caller, service_id: i64) -> Res<ServicePageView>;
    /// The service page's history tables, a page before `before`.
    async fn build_rows(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
    ) -> Res<HistoryPage<BuildRow>>;
    async fn deployment_rows(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
    ) -> Res<HistoryPage<DeploymentRow>>;

    // ------------------------------------------------------------ runtime --
    /// The live container's state, usage and last probe (viewer).
    async fn service_runtime(&self, caller: &Caller, service_id: i64) -> Res<RuntimeView>;
    /// A deployment's timeline (viewer).
    async fn deployment_events(&self, caller: &Caller, deployment_id: i64) -> Res<Vec<DeploymentEventView>>;
    /// The deployment page: the deployment, its service and timeline (viewer).
    async fn deployment_page(&self, caller: &Caller, deployment_id: i64) -> Res<DeploymentPageView>;
    /// One project with its services, as the overview shows it (viewer).
    async fn project_page(&self, caller: &Caller, project_id: i64) -> Res<ProjectView>;
    /// Starts deleting a service confirmed by its name (deployer; admin to
    /// delete its volumes too): the job.
    async fn delete_service(
        &self,
        caller: &Caller,
        service_id: i64,
        confirm: String,
        delete_volumes: bool,
    ) -> Res<ActionView>;
    /// The service's named volumes with their sizes (viewer).
    async fn service_volumes(&self, caller: &Caller, service_id: i64) -> Res<Vec<VolumeView>>;
    /// Deletes one of the service's volumes and its data (admin).
    async fn delete_volume(&self, caller: &Caller, service_id: i64, name: String) -> Res<()>;
    /// Queues a "deploy all" of the project in `deploy_after` order (deployer).
    async fn deploy_all(&self, caller: &Caller, project_id: i64) -> Res<ActionView>;
    /// Queues a build of every service of the project that builds its own image (deployer).
    async fn build_all(&self, caller: &Caller, project_id: i64) -> Res<BuildAllView>;
    /// Deletes a project with no services, confirmed by its name (deployer).
    async fn delete_project(&self, caller: &Caller, project_id: i64, confirm: String) -> Res<()>;
    /// `restart`, `stop`, `start` or `redeploy` the service (deployer).
    async fn service_action(&self, caller: &Caller, service_id: i64, action: String) -> Res<ActionView>;

    // ------------------------------------------------------------- builds --
    async fn list_builds(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<BuildView>>;
    async fn build_durations(
        &self,
        caller: &Caller,
        service_id: i64,
        limit: Option<u32>,
    ) -> Res<Vec<BuildPoint>>;
    async fn trigger_build(
        &self,
        caller: &Caller,
        service_id: i64,
        git_ref: Option<String>,
        deploy: bool,
        build_only: bool,
        no_cache: bool,
    ) -> Res<BuildView>;
    async fn get_build(&self, caller: &Caller, build_id: i64) -> Res<BuildDetail>;
    /// The build and its stored log, for the build page.
    async fn build_page(&self, caller: &Caller, build_id: i64) -> Res<BuildPageView>;
    async fn build_log(&self, caller: &Caller, build_id: i64, after: u64) -> Res<Vec<LogLineView>>;
    /// The run's report: steps, services, matrix variants (viewer).
    async fn build_report(&self, caller: &Caller, build_id: i64) -> Res<BuildReport>;
    async fn cancel_build(&self, caller: &Caller, build_id: i64) -> Res<BuildView>;

    // -------------------------------------------------------- deployments --
    async fn list_deployments(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeploymentView>>;
    async fn deploy_build(
        &self,
        caller: &Caller,
        service_id: i64,
        build_id: Option<i64>,
        reason: Option<String>,
    ) -> Res<DeploymentView>;
    /// Deploys an image already in the engine (by id or reference).
    async fn deploy_image(
        &self,
        caller: &Caller,
        service_id: i64,
        image: String,
        reason: Option<String>,
    ) -> Res<DeploymentView>;
    async fn get_deployment(&self, caller: &Caller, deployment_id: i64) -> Res<DeploymentView>;
    async fn rollback_preview(&self, caller: &Caller, deployment_id: i64) -> Res<RollbackPlanView>;
    async fn rollback(
        &self,
        caller: &Caller,
        deployment_id: i64,
        reason: Option<String>,
    ) -> Res<DeploymentView>;

    // --------------------------------------------------------------- team --
    async fn list_users(&self, caller: &Caller) -> Res<Vec<UserView>>;
    async fn create_user(&self, caller: &Caller, name: String, password: String, role: Role)
        -> Res<UserView>;
    async fn set_user_role(&self, caller: &Caller, user_id: i64, role: Role) -> Res<UserView>;
    async fn set_user_disabled(&self, caller: &Caller, user_id: i64, disabled: bool) -> Res<UserView>;
    async fn reset_password(&self, caller: &Caller, user_id: i64, password: String) -> Res<()>;
    async fn change_password(
        &self,
        caller: &Caller,
        request: &http::request::Parts,
        current: String,
        new_password: String,
    ) -> Res<()>;

    // ------------------------------------------------------- integrations --
    async fn get_job(&self, caller: &Caller, job_id: i64) -> Res<JobView>;
    async fn list_tokens(&self, caller: &Caller) -> Res<Vec<TokenView>>;
    async fn create_token(
        &self,
        caller: &Caller,
        name: String,
        expires_in_days: Option<u32>,
    ) -> Res<NewToken>;
    async fn revoke_token(&self, caller: &Caller, token_id: i64) -> Res<TokenView>;
    async fn list_audit(&self, caller: &Caller, query: AuditQuery) -> Res<Vec<AuditEventView>>;
    async fn webhook_info(&self, caller: &Caller, service_id: i64) -> Res<WebhookInfoView>;
    async fn rotate_webhook_secret(&self, caller: &Caller, service_id: i64) -> Res<WebhookInfoView>;
    async fn list_deliveries(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeliveryView>>;
    async fn project_webhook_info(&self, caller: &Caller, project_id: i64) -> Res<ProjectWebhookView>;
    async fn rotate_project_webhook_secret(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Res<ProjectWebhookView>;
    async fn list_project_deliveries(
        &self,
        caller: &Caller,
        project_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeliveryView>>;
    async fn list_notification_targets(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Res<Vec<NotificationTargetView>>;
    async fn create_notification_target(
        &self,
        caller: &Caller,
        project_id: i64,
        target: NewNotificationTarget,
    ) -> Res<NotificationTargetView>;
    async fn delete_notification_target(&self, caller: &Caller, target_id: i64) -> Res<()>;
    /// The notifications page: project, targets, recent deliveries (viewer).
    async fn notifications_page(&self, caller: &Caller, project_id: i64) -> Res<NotificationsPageView>;
    /// Sends a test message to a target now and records it (deployer).
    async fn send_test_notification(&self, caller: &Caller, target_id: i64) -> Res<NotificationDeliveryView>;

    // ------------------------------------------------------------ registry --
    /// A project's image registry, masked; `None`: images stay local (viewer).
    async fn project_registry(&self, caller: &Caller, project_id: i64) -> Res<Option<RegistryView>>;
    /// Sets a project's registry, the password sealed (admin).
    async fn set_project_registry(
        &self,
        caller: &Caller,
        project_id: i64,
        form: RegistryForm,
    ) -> Res<RegistryView>;
    /// Removes a project's registry (admin).
    async fn clear_project_registry(&self, caller: &Caller, project_id: i64) -> Res<()>;

    // -------------------------------------------------------- certificates --
    /// The edge's HTTPS certificates, uploaded and from the directory,
    /// soonest expiry first; never a key (viewer).
    async fn list_certificates(&self, caller: &Caller) -> Res<Vec<CertificateView>>;
    /// Checks and stores a certificate, the key sealed, replacing the
    /// uploads whose names it covers; served at once (admin).
    async fn upload_certificate(&self, caller: &Caller, form: CertificateForm) -> Res<CertificateView>;
    /// Removes an uploaded certificate (admin).
    async fn delete_certificate(&self, caller: &Caller, certificate_id: i64) -> Res<()>;
}

/// The backend provided by the server.
pub fn backend() -> Result<Arc<dyn Backend>, AppError> {
    use_context::<Arc<dyn Backend>>().ok_or_else(|| AppError::Internal("no backend in context".into()))
}

/// The caller the server's middleware put into the request extensions.
pub fn caller() -> Caller {
    use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>().cloned())
        .unwrap_or(Caller::Anonymous)
}

/// The request as the server's middleware left it (session, client address).
pub fn request_parts() -> Result<http::request::Parts, AppError> {
    use_context::<http::request::Parts>().ok_or_else(|| AppError::Internal("no request in context".into()))
}

/// Sets the HTTP status of the server function's response from the error.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
            if let Ok(code) = http::StatusCode::from_u16(e.status()) {
                options.set_status(code);
            }
        }
    }
    result
}
