//! Domain errors to `AppError`: refusals keep their message (and field, for
//! inline display); unexpected failures are logged in full and answered
//! briefly.

use app::{wire::FieldError, AppError};

use crate::{
    access::AccessError,
    audit,
    auth::{
        password::PasswordError, setup::SetupError, team::TeamError, tokens::TokenError, LoginError,
        UserError,
    },
    engine::EngineError,
    projects::ProjectError,
    validate::ValidationError,
};

/// Logs an unexpected failure in full and gives the caller a short message.
pub fn internal(e: anyhow::Error) -> AppError {
    tracing::error!(error = %format!("{e:#}"), "request failed");
    AppError::Internal(e.to_string())
}

fn field(field: &str, message: String) -> AppError {
    AppError::InvalidField { field: field.to_string(), message }
}

/// Every refused field, in one answer.
fn fields(list: Vec<ValidationError>) -> AppError {
    AppError::fields(
        list.into_iter().map(|e| FieldError { field: e.field.to_string(), message: e.message }).collect(),
    )
}

pub fn access(e: AccessError) -> AppError {
    match e {
        AccessError::Unauthenticated => AppError::Unauthenticated,
        AccessError::Forbidden { .. } => AppError::Forbidden(e.to_string()),
    }
}

pub fn engine(e: EngineError) -> AppError {
    match e {
        EngineError::Access(e) => access(e),
        EngineError::Invalid { field: f, message } => field(f, message),
        EngineError::Fields(list) => fields(list),
        EngineError::NotFound(what) => AppError::NotFound(what.to_string()),
        EngineError::Conflict(message) => AppError::Conflict(message),
        EngineError::Project(e) => project(e),
        EngineError::Internal(e) => internal(e),
    }
}

pub fn project(e: ProjectError) -> AppError {
    match e {
        ProjectError::Invalid { field: f, message } => field(f, message),
        ProjectError::Conflict { field: f, message } => AppError::Taken { field: f.to_string(), message },
        ProjectError::Fields(list) => fields(list),
        ProjectError::NotFound { what } => AppError::NotFound(what.to_string()),
        ProjectError::InUse(message) => AppError::Conflict(message),
        e @ (ProjectError::Database(_) | ProjectError::Corrupt { .. }) => internal(e.into()),
    }
}

pub fn user(e: UserError) -> AppError {
    match e {
        UserError::Invalid(v) => field(v.field, v.message),
        UserError::Password(PasswordError::Hash(_)) => internal(e.into()),
        UserError::Password(p) => field("password", p.to_string()),
        UserError::NameTaken => field("name", e.to_string()),
        UserError::BadRole => field("role", "must be admin, deployer or viewer".into()),
        UserError::Fields(list) => fields(list),
        UserError::NotFound => AppError::NotFound("user".into()),
        UserError::LastAdmin => AppError::Conflict(e.to_string()),
        UserError::Db(_) => internal(e.into()),
    }
}

pub fn login(e: LoginError) -> AppError {
    match e {
        LoginError::BadCredentials | LoginError::Disabled => AppError::Forbidden(e.to_string()),
        LoginError::TooManyAttempts(_) => AppError::RateLimited(e.to_string()),
        LoginError::Store(e) => user(e),
        LoginError::Session(_) => internal(e.into()),
    }
}

pub fn team(e: TeamError) -> AppError {
    match e {
        TeamError::Access(e) => access(e),
        TeamError::User(e) => user(e),
        TeamError::WrongPassword => field("current", e.to_string()),
        TeamError::TooManyAttempts(_) => AppError::RateLimited(e.to_string()),
        TeamError::Session(_) => internal(e.into()),
    }
}

pub fn setup(e: SetupError) -> AppError {
    match e {
        SetupError::Done => AppError::Conflict(e.to_string()),
        SetupError::BadToken => AppError::Forbidden(e.to_string()),
        SetupError::User(e) => user(e),
        SetupError::Session(_) => internal(e.into()),
    }
}

pub fn token(e: TokenError) -> AppError {
    match e {
        TokenError::Access(e) => access(e),
        TokenError::Invalid { field: f, message } => field(f, message),
        TokenError::Fields(list) => AppError::fields(
            list.into_iter()
                .filter_map(|e| match e {
                    TokenError::Invalid { field, message } => {
                        Some(FieldError { field: field.to_string(), message })
                    }
                    _ => None,
                })
                .collect(),
        ),
        TokenError::NotFound => AppError::NotFound("token".into()),
        TokenError::FromToken => AppError::Forbidden(e.to_string()),
        TokenError::Db(_) => internal(e.into()),
    }
}

pub fn audit(e: audit::ListError) -> AppError {
    match e {
        audit::ListError::Access(e) => access(e),
        audit::ListError::Db(_) => internal(e.into()),
    }
}
