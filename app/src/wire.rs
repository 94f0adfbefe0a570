//! Types that cross the wire between browser and server.

use serde::{Deserialize, Serialize};

pub mod certificates;
pub mod integrations;
pub mod pipeline;
pub mod runtime;
pub mod services;
pub mod settings;
pub mod team;

pub use certificates::*;
pub use integrations::*;
pub use pipeline::*;
pub use runtime::*;
pub use services::*;
pub use settings::*;
pub use team::*;

/// Who is calling, resolved once per request by the server's middleware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Caller {
    Anonymous,
    User {
        id: i64,
        name: String,
        role: Role,
        /// How the caller signed in: the audit log's source.
        #[serde(default)]
        via: Via,
    },
}

/// How a caller authenticated: a dashboard session cookie or an API token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Via {
    #[default]
    Session,
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Deployer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Deployer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether this role includes `needed` (viewer < deployer < admin).
    pub fn includes(self, needed: Role) -> bool {
        let rank = |r: Role| Role::ALL.iter().position(|x| *x == r).unwrap_or(0);
        rank(self) >= rank(needed)
    }
}

impl Caller {
    /// The caller's role, `None` when anonymous.
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Anonymous => None,
            Caller::User { role, .. } => Some(*role),
        }
    }

    /// Whether the UI should offer an action that needs `needed`.
    pub fn may(&self, needed: Role) -> bool {
        self.role().is_some_and(|r| r.includes(needed))
    }
}

/// What the status page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SystemStatus {
    pub version: String,
    pub database: DatabaseStatus,
    pub docker: DockerStatus,
    /// RFC 3339 with milliseconds, server clock.
    pub checked_at: String,
    /// The edge router's listening address (`SLIPWAY_EDGE_ADDR`).
    #[serde(default)]
    pub edge_addr: String,
    /// Where services answer, `scheme://<service host>:<port>/`: scheme and
    /// port from `SLIPWAY_PUBLIC_URL`, or derived from the edge address.
    #[serde(default)]
    pub public_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DatabaseStatus {
    pub engine: String,
    pub migrations_applied: i64,
    pub latest_migration: Option<String>,
    pub initialised_at: Option<String>,
    /// Migrations this binary knows; the schema is up to date when all of
    /// them are applied.
    #[serde(default)]
    pub migrations_known: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum DockerStatus {
    Reachable { version: String, api_version: String, platform: String },
    Unreachable { reason: String },
}
