//! Types that cross the wire between browser and server.

use serde::{Deserialize, Serialize};

/// Who is calling, resolved once per request by the server's middleware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caller {
    Anonymous,
    User { id: i64, name: String, role: Role },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Deployer,
    Admin,
}

/// What the status page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemStatus {
    pub version: String,
    pub database: DatabaseStatus,
    pub docker: DockerStatus,
    /// RFC 3339 with milliseconds, server clock.
    pub checked_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub engine: String,
    pub migrations_applied: i64,
    pub latest_migration: Option<String>,
    pub initialised_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DockerStatus {
    Reachable { version: String, api_version: String, platform: String },
    Unreachable { reason: String },
}
