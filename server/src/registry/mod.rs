//! A project's image registry (optional): where its services' images are
//! pushed after each build and pulled from when an engine lacks one.
//!
//! - [`settings`]: the stored settings (password sealed) and the use-cases
//!   (viewer reads them masked, admin sets and clears them, audited);
//! - [`publish`]: what a build pushes (every tag) and what a deploy pulls
//!   (by digest), on top of `crate::docker::registry`.

pub mod manifest;
pub mod publish;
pub mod settings;

pub use settings::{Registry, RegistryForm, RegistryView};
