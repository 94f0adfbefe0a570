//! One module per page.

pub mod account;
pub mod audit;
pub mod build;
pub mod certificates;
pub mod deployment;
pub mod login;
pub mod new_service;
pub mod not_found;
pub mod notifications;
pub mod overview;
pub mod project;
pub mod registry;
pub mod service;
pub mod service_row;
pub mod setup;
pub mod status;
pub mod tokens;
pub mod users;
