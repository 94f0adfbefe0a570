//! Projects and services: the overview, create and edit.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::{
    error::AppError,
    wire::{ProjectView, ServiceDetail, ServicePageView, ServiceSettings},
};

/// Every project with its services, live deployment and last build (viewer).
#[server(prefix = "/rpc", endpoint = "overview", input = Json)]
pub async fn overview() -> Result<Vec<ProjectView>, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.overview(&caller()).await)
}

/// Creates an empty project (deployer).
#[server(prefix = "/rpc", endpoint = "create_project", input = Json)]
pub async fn create_project(name: String) -> Result<ProjectView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.create_project(&caller(), name).await)
}

/// Creates a service in a project with its settings and env (deployer).
#[server(prefix = "/rpc", endpoint = "create_service", input = Json)]
pub async fn create_service(project_id: i64, settings: ServiceSettings) -> Result<ServiceDetail, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.create_service(&caller(), project_id, settings).await)
}

/// One service with its settings, secrets masked (viewer).
#[server(prefix = "/rpc", endpoint = "get_service", input = Json)]
pub async fn get_service(service_id: i64) -> Result<ServiceDetail, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.get_service(&caller(), service_id).await)
}

/// The service page's data in one call: the service, the duration chart and
/// the first page of each history (viewer).
#[server(prefix = "/rpc", endpoint = "service_page", input = Json)]
pub async fn service_page(service_id: i64) -> Result<ServicePageView, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.service_page(&caller(), service_id).await)
}

/// Replaces a service's settings and env, all or nothing (deployer).
#[server(prefix = "/rpc", endpoint = "update_service", input = Json)]
pub async fn update_service(service_id: i64, settings: ServiceSettings) -> Result<ServiceDetail, AppError> {
    use crate::backend::{backend, caller, respond};
    respond(backend()?.update_service(&caller(), service_id, settings).await)
}
