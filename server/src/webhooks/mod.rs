//! Forge webhooks (GitHub, Gitea, GitLab). So far: signature verification
//! ([`verify`]); the delivery endpoint, deduplication and build triggering
//! come with the rest of the integrations issue.

pub mod verify;
