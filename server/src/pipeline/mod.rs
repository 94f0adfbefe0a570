//! Pipelines: a repository's `.slipway.yml` and how a run of it is planned.
//!
//! - [`spec`]: the file's types, parsing and validation with positions
//!   ([`spec::parse`], [`spec::Spec::implicit`] for services without a file);
//! - [`plan`]: the `when` gate, matrix variants and step graph of a run
//!   ([`plan::plan`]), and the pure scheduler an executor drives
//!   ([`plan::Schedule`]).
//!
//! - [`run`]: a planned run executed on the container runtime, each step
//!   recorded in `build_steps` as it changes.
//!
//! `spec` and `plan` are pure: no database, no Docker, no I/O.

pub mod plan;
pub mod run;
pub mod spec;
