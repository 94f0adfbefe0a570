//! Test kit shared by the server's integration tests and `end2end/`:
//! temporary data dirs, throwaway git repositories, the Docker base image and
//! label-based cleanup, real Debian images (PostgreSQL, Redis; nginx), a test
//! certificate authority with an HTTPS client, and a
//! handle on a real `slipway serve` process.
//! Compiled only with the `testkit` feature.

pub mod app;
pub mod data_dir;
pub mod debian;
pub mod docker;
pub mod edge;
pub mod engine;
pub mod git;
pub mod hostile;
pub mod installation;
pub mod instance;
pub mod process;
pub mod registry;
pub mod tls;
pub mod wait;
pub mod wrk;

pub use data_dir::TestDataDir;
pub use debian::{ensure_debian_image, ensure_nginx_image, DEBIAN_IMAGE, NGINX_IMAGE};
pub use docker::{DockerKit, BASE_IMAGE, TEST_LABEL};
pub use engine::TestEngine;
pub use git::GitRepo;
pub use installation::Installation;
pub use process::{free_port, http_get, profile_dir, ServerProcess};
