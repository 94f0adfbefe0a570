//! Labels on the containers Slipway makes (all of these) and the images it
//! builds (only [`INSTANCE`], plus configured extra labels: with the classic
//! builder fallback each build label costs a builder step).
//! Orphan removal and clean-up find objects by these, never by name.

/// `true` on everything Slipway made.
pub const MANAGED: &str = "dev.slipway.managed";
/// The installation's id (`instance.uid`): two installations sharing one
/// engine never touch each other's objects.
pub const INSTANCE: &str = "dev.slipway.instance";
pub const PROJECT: &str = "dev.slipway.project";
/// On a project network (issue 18).
pub const PROJECT_ID: &str = "dev.slipway.project-id";
pub const SERVICE: &str = "dev.slipway.service";
pub const SERVICE_ID: &str = "dev.slipway.service-id";
pub const DEPLOYMENT_ID: &str = "dev.slipway.deployment-id";
/// The build (pipeline run) that owns a step or service container, a run
/// network or a workspace volume: `remove_run` and orphan removal find a
/// run's objects by it (with [`INSTANCE`]).
pub const BUILD_ID: &str = "dev.slipway.build-id";
