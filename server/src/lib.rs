//! Slipway's server: the `slipway` binary's commands and the whole domain,
//! one module per concern (see docs/ARCHITECTURE.md).
// Leptos view types of the larger pages nest deeply when the router is
// instantiated here (SSR); the default limit of 128 is not enough.
#![recursion_limit = "512"]

pub mod access;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod build_report;
pub mod builds;
pub mod catalog;
pub mod certificates;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod deploys;
pub mod docker;
pub mod edge;
pub mod engine;
pub mod git;
pub mod history;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod logs;
pub mod notify;
pub mod pipeline;
pub mod projects;
pub mod registry;
pub mod retention;
pub mod runtime;
pub mod secrets;
pub mod service_env;
pub mod service_page;
pub mod startup;
pub mod status;
pub mod telemetry;
pub mod validate;
pub mod webhooks;

#[cfg(feature = "testkit")]
pub mod testkit;

/// Slipway's version, as shown on the status page and by `slipway --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
