//! The HTTP layer: everything that speaks HTTP to browsers, API clients and
//! forges, over the domain modules. Dependencies point one way: `http` →
//! domain (`builds`, `deploys`, `pipeline`, …) → runtime (`docker`, `git`,
//! `db`).
//!
//! * [`web`]: the dashboard's router (Leptos SSR, server functions, static
//!   files) and the assembly of every route below.
//! * [`identity`]: the caller of each request (session or API token).
//! * [`api`]: the REST API v1 and its OpenAPI document; [`api::ApiError`].
//! * [`log_stream`], [`runtime_log_stream`]: Server-Sent Events of a
//!   build's log and of a service's container log.
//! * [`webhook`]: the forge webhook endpoint (`/hooks/…`).
//! * [`metrics`]: `/metrics` in the Prometheus text format.

pub mod api;
pub mod identity;
pub mod log_stream;
pub mod metrics;
pub mod runtime_log_stream;
pub mod web;
pub mod webhook;
