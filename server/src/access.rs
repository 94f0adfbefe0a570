//! Role checks, done by the domain use-cases (never only by the UI).
//!
//! viewer < deployer < admin: a deployer may build, deploy, roll back and
//! edit services; an admin may also manage users and settings.

use app::wire::{Caller, Role};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("this needs the {needed} role")]
    Forbidden { needed: &'static str },
}

/// The caller's name if they hold `needed` or a higher role.
pub fn require(caller: &Caller, needed: Role) -> Result<String, AccessError> {
    match caller {
        Caller::Anonymous => Err(AccessError::Unauthenticated),
        Caller::User { role, name, .. } if role.includes(needed) => Ok(name.clone()),
        Caller::User { .. } => Err(AccessError::Forbidden { needed: needed.as_str() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::wire::Via;

    fn user(role: Role) -> Caller {
        Caller::User { id: 1, name: "ann".into(), role, via: Via::Session }
    }

    #[test]
    fn roles_are_ordered() {
        assert_eq!(require(&Caller::Anonymous, Role::Viewer), Err(AccessError::Unauthenticated));
        assert_eq!(require(&user(Role::Viewer), Role::Viewer).as_deref(), Ok("ann"));
        assert_eq!(
            require(&user(Role::Viewer), Role::Deployer),
            Err(AccessError::Forbidden { needed: "deployer" })
        );
        assert!(require(&user(Role::Deployer), Role::Deployer).is_ok());
        assert_eq!(
            require(&user(Role::Deployer), Role::Admin),
            Err(AccessError::Forbidden { needed: "admin" })
        );
        assert!(require(&user(Role::Admin), Role::Deployer).is_ok());
    }
}
