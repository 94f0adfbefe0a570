//! Server integration tests: one test binary (one link, one copy on disk)
//! with a module per area. Run one area with
//! `cargo test -p server --test it -- operate::`.

mod api_fuzz;
mod api_hostile;
mod api_matrix;
mod api_order;
mod auth_cli;
mod auth_http;
mod auth_process;
mod auth_users;
mod authz_matrix;
mod build_only;
mod build_pipeline;
mod buildkit;
mod cli_client;
mod cli_config;
mod crash_recovery;
mod dashboard_forms;
mod db_migrations;
mod delete_crash;
mod docker_status;
mod edge_proxy;
mod edge_restart;
mod edge_router;
mod engine_loop;
mod hostile_inputs;
mod job_queue;
mod lifecycle_crash;
mod local_repos;
mod log_stream;
mod metrics;
mod notify;
mod notify_deliveries;
mod operate;
mod pipeline_crash;
mod pipeline_report;
mod pipeline_run;
mod pipeline_runtime;
mod registry;
mod rpc;
mod runtime_http;
mod service_page;
mod session_security;
mod webhook_forms;
mod webhook_storm;
mod webhooks;
