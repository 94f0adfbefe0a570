//! The server's implementation of the UI's `Backend` port: each method calls
//! one domain use-case (which checks the caller's role) and converts the
//! answer to wire types. Nothing else.

mod convert;
mod integrations;
mod report;
mod runtime;
pub use convert::log_line;
pub mod errors;

use app::{
    backend::Backend,
    wire::{
        AuditEventView, AuditQuery, BuildDetail, BuildPageView, BuildPoint, BuildReport, BuildRow, BuildView,
        Caller, CertificateForm, CertificateView, ConfigChange, DeliveryView, DeploymentRow, DeploymentView,
        HistoryPage, JobView, LogLineView, NewNotificationTarget, NewToken, NotificationDeliveryView,
        NotificationTargetView, NotificationsPageView, ProjectView, ProjectWebhookView, RegistryForm,
        RegistryView, Role, RollbackPlanView, ServiceDetail, ServicePageView, ServiceSettings,
        ServiceSummary, SetupInfo, SystemStatus, TokenView, UserView, WebhookInfoView,
    },
    AppError,
};

pub use errors::internal;

use crate::{
    access::require,
    auth::Auth,
    builds::{Build, TriggerBuild},
    deploys::{service_host, DeployRequest, Deployment},
    edge::reach::Reach,
    engine::Engine,
    history::{Page, PageRequest},
    status::StatusService,
};

type Res<T> = Result<T, AppError>;

pub struct ServerBackend {
    pub status: StatusService,
    /// Sign-in and sessions; `None` until [`ServerBackend::with_auth`].
    pub auth: Option<Auth>,
    /// Projects, builds, deploys; `None` until [`ServerBackend::with_engine`].
    pub engine: Option<Engine>,
    /// How services are reached through the edge router (URLs shown).
    pub reach: Reach,
}

impl ServerBackend {
    pub fn new(status: StatusService) -> Self {
        ServerBackend { status, auth: None, engine: None, reach: Reach::default() }
    }

    pub fn with_reach(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    fn auth(&self) -> Res<&Auth> {
        self.auth.as_ref().ok_or_else(|| AppError::Unavailable("sign-in is not configured".into()))
    }

    fn engine(&self) -> Res<&Engine> {
        self.engine.as_ref().ok_or_else(|| AppError::Unavailable("the build engine is not running".into()))
    }

    /// A deployment with its build's number and commit.
    async fn deployment_view(&self, d: Deployment) -> Res<DeploymentView> {
        let ids: Vec<i64> = d.build_id.into_iter().collect();
        let build = self.engine()?.build_refs(&ids).await.map_err(errors::engine)?.pop();
        Ok(convert::deployment(d, build.as_ref()))
    }

    /// A page of deployments with their builds, read in one query.
    async fn deployment_page(&self, page: Page<Deployment>) -> Res<HistoryPage<DeploymentView>> {
        let mut ids: Vec<i64> = page.items.iter().filter_map(|d| d.build_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let builds = self.engine()?.build_refs(&ids).await.map_err(errors::engine)?;
        let items = page
            .items
            .into_iter()
            .map(|d| {
                let build = d.build_id.and_then(|id| builds.iter().find(|b| b.id == id));
                convert::deployment(d, build)
            })
            .collect();
        Ok(HistoryPage { items, next: page.next })
    }
}

/// The session the session layer put into the request.
fn session(request: &http::request::Parts) -> Res<tower_sessions::Session> {
    request.extensions.get::<tower_sessions::Session>().cloned().ok_or_else(|| {
        tracing::error!("no session layer in front of a session use-case");
        AppError::Internal("no session".into())
    })
}

fn page(before: Option<i64>, limit: Option<u32>) -> PageRequest {
    PageRequest { before, limit }
}

/// A domain page as the wire's history page.
fn history<T>(p: Page<T>) -> HistoryPage<T> {
    HistoryPage { items: p.items, next: p.next }
}

#[async_trait::async_trait]
impl Backend for ServerBackend {
    async fn system_status(&self, caller: &Caller) -> Res<SystemStatus> {
        require(caller, Role::Viewer).map_err(errors::access)?;
        let mut status = self.status.system_status().await.map_err(internal)?;
        status.edge_addr = self.reach.edge_addr();
        status.public_url = self.reach.pattern();
        Ok(status)
    }

    async fn login(&self, request: &http::request::Parts, name: String, password: String) -> Res<Caller> {
        let ip = crate::auth::client_ip(&request.extensions);
        let user =
            self.auth()?.login(&session(request)?, &name, &password, ip).await.map_err(errors::login)?;
        Ok(user.caller())
    }

    async fn logout(&self, _caller: &Caller, request: &http::request::Parts) -> Res<()> {
        self.auth()?.logout(&session(request)?).await.map_err(|e| internal(e.into()))
    }

    async fn whoami(&self, caller: &Caller) -> Res<Caller> {
        Ok(caller.clone())
    }

    async fn setup_state(&self) -> Res<SetupInfo> {
        Ok(SetupInfo { needs_setup: self.auth()?.needs_setup().await.map_err(errors::user)? })
    }

    async fn setup_admin(
        &self,
        request: &http::request::Parts,
        token: String,
        name: String,
        password: String,
    ) -> Res<Caller> {
        let auth = self.auth()?;
        let user =
            auth.setup_admin(&session(request)?, &token, &name, &password).await.map_err(errors::setup)?;
        Ok(user.caller())
    }

    async fn overview(&self, caller: &Caller) -> Res<Vec<ProjectView>> {
        let mut out = Vec::new();
        for (project, services) in self.engine()?.overview(caller).await.map_err(errors::engine)? {
            let mut summaries = Vec::with_capacity(services.len());
            for s in services {
                let state = s.live.as_ref().map(|d| self.engine().map(|e| e.runtime_state(d))).transpose()?;
                let live = match s.live {
                    Some(d) => Some(self.deployment_view(d).await?),
                    None => None,
                };
                let host = service_host(&project, &s.service);
                summaries.push(ServiceSummary {
                    id: s.service.id,
                    project_id: project.id,
                    project: project.name.clone(),
                    url: self.reach.url(&host),
                    host,
                    kind: s.service.spec.kind.as_str().to_string(),
                    image_from: s.service.spec.image_from.clone(),
                    routed: s.service.spec.routed(),
                    name: s.service.spec.name,
                    branch: s.service.spec.branch,
                    live,
                    last_build: s.last_build.map(convert::build),
                    state,
                });
            }
            out.push(ProjectView { id: project.id, name: project.name, services: summaries });
        }
        Ok(out)
    }

    async fn create_project(&self, caller: &Caller, name: String) -> Res<ProjectView> {
        let p = self.engine()?.create_project(caller, &name).await.map_err(errors::engine)?;
        Ok(ProjectView { id: p.id, name: p.name, services: Vec::new() })
    }

    async fn create_service(
        &self,
        caller: &Caller,
        project_id: i64,
        settings: ServiceSettings,
    ) -> Res<ServiceDetail> {
        let (spec, env) = convert::service_spec(settings);
        let view =
            self.engine()?.create_service(caller, project_id, &spec, &env).await.map_err(errors::engine)?;
        Ok(convert::service_detail(view))
    }

    async fn get_service(&self, caller: &Caller, service_id: i64) -> Res<ServiceDetail> {
        let view = self.engine()?.get_service(caller, service_id).await.map_err(errors::engine)?;
        Ok(convert::service_detail(view))
    }

    async fn update_service(
        &self,
        caller: &Caller,
        service_id: i64,
        settings: ServiceSettings,
    ) -> Res<ServiceDetail> {
        let (spec, env) = convert::service_spec(settings);
        let view =
            self.engine()?.update_service(caller, service_id, &spec, &env).await.map_err(errors::engine)?;
        Ok(convert::service_detail(view))
    }

    async fn service_page(&self, caller: &Caller, service_id: i64) -> Res<ServicePageView> {
        let p = self.engine()?.service_page(caller, service_id).await.map_err(errors::engine)?;
        let detail = convert::service_detail(p.service);
        Ok(ServicePageView {
            url: self.reach.url(&detail.host),
            curl: self.reach.curl(&detail.host),
            detail,
            chart: p.chart,
            builds: history(p.builds),
            deployments: history(p.deployments),
            deliveries: p.deliveries.map(integrations::deliveries_page),
        })
    }

    async fn build_rows(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
    ) -> Res<HistoryPage<BuildRow>> {
        let p = self.engine()?.build_rows(caller, service_id, page(before, None)).await;
        Ok(history(p.map_err(errors::engine)?))
    }

    async fn deployment_rows(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
    ) -> Res<HistoryPage<DeploymentRow>> {
        let p = self.engine()?.deployment_rows(caller, service_id, page(before, None)).await;
        Ok(history(p.map_err(errors::engine)?))
    }

    async fn list_builds(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<BuildView>> {
        let p = self
            .engine()?
            .list_builds(caller, service_id, page(before, limit))
            .await
            .map_err(errors::engine)?;
        Ok(HistoryPage { items: p.items.into_iter().map(convert::build).collect(), next: p.next })
    }

    async fn build_durations(
        &self,
        caller: &Caller,
        service_id: i64,
        limit: Option<u32>,
    ) -> Res<Vec<BuildPoint>> {
        let limit = page(None, limit).limit();
        self.engine()?.build_durations(caller, service_id, limit).await.map_err(errors::engine)
    }

    async fn trigger_build(
        &self,
        caller: &Caller,
        service_id: i64,
        git_ref: Option<String>,
        deploy: bool,
        build_only: bool,
        no_cache: bool,
    ) -> Res<BuildView> {
        let req = TriggerBuild {
            service_id,
            git_ref,
            trigger: crate::audit::Source::build_trigger(caller).into(),
            deploy,
            build_only,
            no_cache,
            group: None,
        };
        let build: Build = self.engine()?.trigger_build(caller, req).await.map_err(errors::engine)?;
        Ok(convert::build(build))
    }

    async fn get_build(&self, caller: &Caller, build_id: i64) -> Res<BuildDetail> {
        let engine = self.engine()?;
        let build = engine.get_build(caller, build_id).await.map_err(errors::engine)?;
        let (project, service) = engine.owner_of(build.service_id).await.map_err(errors::engine)?;
        Ok(BuildDetail { build: convert::build(build), service: service.spec.name, project: project.name })
    }

    async fn build_page(&self, caller: &Caller, build_id: i64) -> Res<BuildPageView> {
        let detail = self.get_build(caller, build_id).await?;
        let lines = self.build_log(caller, build_id, 0).await?;
        let report = self.build_report(caller, build_id).await?;
        Ok(BuildPageView { detail, lines, report })
    }

    async fn build_report(&self, caller: &Caller, build_id: i64) -> Res<BuildReport> {
        let r = self.engine()?.build_report(caller, build_id).await.map_err(errors::engine)?;
        Ok(report::report(r))
    }

    async fn build_log(&self, caller: &Caller, build_id: i64, after: u64) -> Res<Vec<LogLineView>> {
        let lines = self
            .engine()?
            .build_log(caller, build_id, after.saturating_add(1))
            .await
            .map_err(errors::engine)?;
        Ok(lines.into_iter().map(convert::log_line).collect())
    }

    async fn cancel_build(&self, caller: &Caller, build_id: i64) -> Res<BuildView> {
        let build = self.engine()?.cancel_build(caller, build_id).await.map_err(errors::engine)?;
        Ok(convert::build(build))
    }

    async fn list_deployments(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeploymentView>> {
        let p = self
            .engine()?
            .list_deployments(caller, service_id, page(before, limit))
            .await
            .map_err(errors::engine)?;
        self.deployment_page(p).await
    }

    async fn deploy_build(
        &self,
        caller: &Caller,
        service_id: i64,
        build_id: Option<i64>,
        reason: Option<String>,
    ) -> Res<DeploymentView> {
        let req = DeployRequest { service_id, build_id, image: None, reason };
        let d = self.engine()?.deploy(caller, req).await.map_err(errors::engine)?;
        self.deployment_view(d.masked()).await
    }

    async fn deploy_image(
        &self,
        caller: &Caller,
        service_id: i64,
        image: String,
        reason: Option<String>,
    ) -> Res<DeploymentView> {
        let req = DeployRequest { service_id, build_id: None, image: Some(image), reason };
        let d = self.engine()?.deploy(caller, req).await.map_err(errors::engine)?;
        self.deployment_view(d.masked()).await
    }

    async fn get_deployment(&self, caller: &Caller, deployment_id: i64) -> Res<DeploymentView> {
        let d = self.engine()?.get_deployment(caller, deployment_id).await.map_err(errors::engine)?;
        self.deployment_view(d.masked()).await
    }

    async fn rollback_preview(&self, caller: &Caller, deployment_id: i64) -> Res<RollbackPlanView> {
        let plan = self.engine()?.rollback_plan(caller, deployment_id).await.map_err(errors::engine)?;
        let current = match plan.live {
            Some(d) => Some(self.deployment_view(d).await?),
            None => None,
        };
        Ok(RollbackPlanView {
            target: self.deployment_view(plan.target).await?,
            current,
            changes: plan
                .changes
                .into_iter()
                .map(|c| ConfigChange { field: c.field, live: c.live, target: c.target })
                .collect(),
        })
    }

    async fn rollback(
        &self,
        caller: &Caller,
        deployment_id: i64,
        reason: Option<String>,
    ) -> Res<DeploymentView> {
        let d = self
            .engine()?
            .rollback(caller, deployment_id, reason.as_deref())
            .await
            .map_err(errors::engine)?;
        self.deployment_view(d.masked()).await
    }

    async fn list_users(&self, caller: &Caller) -> Res<Vec<UserView>> {
        let users = self.auth()?.list_users(caller).await.map_err(errors::team)?;
        Ok(users.into_iter().map(convert::user).collect())
    }

    async fn create_user(
        &self,
        caller: &Caller,
        name: String,
        password: String,
        role: Role,
    ) -> Res<UserView> {
        let user = self.auth()?.create_user(caller, &name, &password, role).await.map_err(errors::team)?;
        Ok(convert::user(user))
    }

    async fn set_user_role(&self, caller: &Caller, user_id: i64, role: Role) -> Res<UserView> {
        Ok(convert::user(self.auth()?.set_user_role(caller, user_id, role).await.map_err(errors::team)?))
    }

    async fn set_user_disabled(&self, caller: &Caller, user_id: i64, disabled: bool) -> Res<UserView> {
        Ok(convert::user(
            self.auth()?.set_user_disabled(caller, user_id, disabled).await.map_err(errors::team)?,
        ))
    }

    async fn reset_password(&self, caller: &Caller, user_id: i64, password: String) -> Res<()> {
        self.auth()?.reset_password(caller, user_id, &password).await.map_err(errors::team)
    }

    async fn change_password(
        &self,
        caller: &Caller,
        request: &http::request::Parts,
        current: String,
        new_password: String,
    ) -> Res<()> {
        let ip = crate::auth::client_ip(&request.extensions);
        self.auth()?
            .change_own_password(caller, &session(request)?, ip, &current, &new_password)
            .await
            .map_err(errors::team)
    }

    async fn get_job(&self, caller: &Caller, job_id: i64) -> Res<JobView> {
        self.job(caller, job_id).await
    }

    async fn service_runtime(&self, caller: &Caller, service_id: i64) -> Res<app::wire::RuntimeView> {
        self.runtime(caller, service_id).await
    }

    async fn deployment_events(
        &self,
        caller: &Caller,
        deployment_id: i64,
    ) -> Res<Vec<app::wire::DeploymentEventView>> {
        self.events(caller, deployment_id).await
    }

    async fn deployment_page(
        &self,
        caller: &Caller,
        deployment_id: i64,
    ) -> Res<app::wire::DeploymentPageView> {
        self.deployment_page_view(caller, deployment_id).await
    }

    async fn delete_service(
        &self,
        caller: &Caller,
        service_id: i64,
        confirm: String,
        delete_volumes: bool,
    ) -> Res<app::wire::ActionView> {
        self.delete_service_now(caller, service_id, &confirm, delete_volumes).await
    }

    async fn service_volumes(&self, caller: &Caller, service_id: i64) -> Res<Vec<app::wire::VolumeView>> {
        self.volumes(caller, service_id).await
    }

    async fn delete_volume(&self, caller: &Caller, service_id: i64, name: String) -> Res<()> {
        self.engine()?.delete_volume(caller, service_id, &name).await.map_err(errors::engine)
    }

    async fn deploy_all(&self, caller: &Caller, project_id: i64) -> Res<app::wire::ActionView> {
        let job = self.engine()?.deploy_all(caller, project_id).await.map_err(errors::engine)?;
        Ok(app::wire::ActionView { action: "deploy_all".into(), job_id: Some(job), deployment_id: None })
    }

    async fn build_all(&self, caller: &Caller, project_id: i64) -> Res<app::wire::BuildAllView> {
        let build_ids = self.engine()?.build_all(caller, project_id).await.map_err(errors::engine)?;
        Ok(app::wire::BuildAllView { build_ids })
    }

    async fn project_page(&self, caller: &Caller, project_id: i64) -> Res<ProjectView> {
        self.overview(caller)
            .await?
            .into_iter()
            .find(|p| p.id == project_id)
            .ok_or_else(|| AppError::NotFound("project".into()))
    }

    async fn delete_project(&self, caller: &Caller, project_id: i64, confirm: String) -> Res<()> {
        self.delete_project_now(caller, project_id, &confirm).await
    }

    async fn service_action(
        &self,
        caller: &Caller,
        service_id: i64,
        action: String,
    ) -> Res<app::wire::ActionView> {
        self.action(caller, service_id, &action).await
    }

    async fn list_tokens(&self, caller: &Caller) -> Res<Vec<TokenView>> {
        self.tokens(caller).await
    }

    async fn create_token(
        &self,
        caller: &Caller,
        name: String,
        expires_in_days: Option<u32>,
    ) -> Res<NewToken> {
        self.new_token(caller, &name, expires_in_days).await
    }

    async fn revoke_token(&self, caller: &Caller, token_id: i64) -> Res<TokenView> {
        self.revoke(caller, token_id).await
    }

    async fn list_audit(&self, caller: &Caller, query: AuditQuery) -> Res<Vec<AuditEventView>> {
        self.audit_events(caller, query).await
    }

    async fn webhook_info(&self, caller: &Caller, service_id: i64) -> Res<WebhookInfoView> {
        self.webhook(caller, service_id, false).await
    }

    async fn rotate_webhook_secret(&self, caller: &Caller, service_id: i64) -> Res<WebhookInfoView> {
        self.webhook(caller, service_id, true).await
    }

    async fn list_deliveries(
        &self,
        caller: &Caller,
        service_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeliveryView>> {
        self.deliveries(caller, service_id, before, limit).await
    }

    async fn project_webhook_info(&self, caller: &Caller, project_id: i64) -> Res<ProjectWebhookView> {
        self.project_webhook(caller, project_id, false).await
    }

    async fn rotate_project_webhook_secret(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Res<ProjectWebhookView> {
        self.project_webhook(caller, project_id, true).await
    }

    async fn list_project_deliveries(
        &self,
        caller: &Caller,
        project_id: i64,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Res<HistoryPage<DeliveryView>> {
        self.project_deliveries(caller, project_id, before, limit).await
    }

    async fn list_notification_targets(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Res<Vec<NotificationTargetView>> {
        self.targets(caller, project_id).await
    }

    async fn create_notification_target(
        &self,
        caller: &Caller,
        project_id: i64,
        target: NewNotificationTarget,
    ) -> Res<NotificationTargetView> {
        self.new_target(caller, project_id, target).await
    }

    async fn delete_notification_target(&self, caller: &Caller, target_id: i64) -> Res<()> {
        self.delete_target(caller, target_id).await
    }

    async fn notifications_page(&self, caller: &Caller, project_id: i64) -> Res<NotificationsPageView> {
        self.notify_page(caller, project_id).await
    }

    async fn project_registry(&self, caller: &Caller, project_id: i64) -> Res<Option<RegistryView>> {
        self.engine()?.project_registry(caller, project_id).await.map_err(errors::engine)
    }

    async fn set_project_registry(
        &self,
        caller: &Caller,
        project_id: i64,
        form: RegistryForm,
    ) -> Res<RegistryView> {
        self.engine()?.set_project_registry(caller, project_id, form).await.map_err(errors::engine)
    }

    async fn clear_project_registry(&self, caller: &Caller, project_id: i64) -> Res<()> {
        self.engine()?.clear_project_registry(caller, project_id).await.map_err(errors::engine)
    }

    async fn send_test_notification(&self, caller: &Caller, target_id: i64) -> Res<NotificationDeliveryView> {
        self.test_target(caller, target_id).await
    }

    async fn list_certificates(&self, caller: &Caller) -> Res<Vec<CertificateView>> {
        self.engine()?.list_certificates(caller).await.map_err(errors::engine)
    }

    async fn upload_certificate(&self, caller: &Caller, form: CertificateForm) -> Res<CertificateView> {
        self.engine()?.upload_certificate(caller, form).await.map_err(errors::engine)
    }

    async fn delete_certificate(&self, caller: &Caller, certificate_id: i64) -> Res<()> {
        self.engine()?.delete_certificate(caller, certificate_id).await.map_err(errors::engine)
    }
}
