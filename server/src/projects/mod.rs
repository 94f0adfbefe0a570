//! Projects and their services: create, update, delete, list.
//!
//! Every field is validated ([`crate::validate`] plus the range checks here)
//! before it is stored; a rejected value comes back as
//! [`ProjectError::Invalid`] naming the field. Role checks belong to the
//! caller-facing use-cases that call this store. Environment variables live
//! in `service_env` and are handled with the secrets module (secret values are
//! stored encrypted).

use sqlx::Row;

use crate::{
    db::{now_rfc3339, Db},
    secrets::Secrets,
    validate::{self, ValidationError},
};

/// Why a project or service operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// A field failed validation.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Several fields failed validation (every field is checked).
    #[error("{}", validate::join(.0))]
    Fields(Vec<ValidationError>),
    /// The value of `field` is already taken (a unique name).
    #[error("{field}: {message}")]
    Conflict { field: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The object is still needed (a project with services, a service with
    /// queued or running jobs).
    #[error("{0}")]
    InUse(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("stored {field} is unreadable: {message}")]
    Corrupt { field: &'static str, message: String },
}

impl ProjectError {
    /// The field a validation or conflict error is about.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ProjectError::Invalid { field, .. } | ProjectError::Conflict { field, .. } => Some(field),
            ProjectError::Fields(list) => list.first().map(|e| e.field),
            _ => None,
        }
    }

    /// One refusal as [`ProjectError::Invalid`], several as
    /// [`ProjectError::Fields`].
    pub fn of_fields(mut list: Vec<ValidationError>) -> Self {
        if list.len() == 1 {
            let e = list.remove(0);
            return ProjectError::Invalid { field: e.field, message: e.message };
        }
        ProjectError::Fields(list)
    }

    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ProjectError::Invalid { field, message: message.into() }
    }
}

impl From<ValidationError> for ProjectError {
    fn from(e: ValidationError) -> Self {
        ProjectError::Invalid { field: e.field, message: e.message }
    }
}

type Result<T> = std::result::Result<T, ProjectError>;

mod kind;
mod lists;
pub mod order;
mod ports;
mod row;
mod spec;

pub use kind::{
    PortSpec, ServiceKind, VolumeSpec, DEFAULT_SETTLE_SECS, MAX_COMMAND_ARGS, MAX_PORTS, MAX_VOLUMES,
};
pub use lists::{MAX_DEPLOY_AFTER, MAX_WATCH_PATH, MAX_WATCH_PATHS};
use row::{bind_spec, row_to_service, SpecRow, SERVICE_COLUMNS, SPEC_COLUMNS};
pub use spec::*;

/// Maps a unique-constraint violation to a conflict on `field`.
fn conflict_on(field: &'static str, message: &'static str) -> impl FnOnce(sqlx::Error) -> ProjectError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() && db.message().contains("services.domain") => {
            ProjectError::Conflict { field: "domain", message: "another service uses this domain".into() }
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ProjectError::Conflict { field, message: message.to_string() }
        }
        _ => ProjectError::Database(e),
    }
}

/// Projects and services in the database.
#[derive(Clone)]
pub struct ProjectStore {
    db: Db,
    /// Seals git URL credentials; without it they are stored as given.
    sealer: Option<Secrets>,
}

impl ProjectStore {
    pub fn new(db: Db) -> Self {
        ProjectStore { db, sealer: None }
    }

    /// A store that keeps git URL credentials sealed (what every use-case
    /// that takes a URL from a user goes through).
    pub fn sealing(db: Db, secrets: Secrets) -> Self {
        ProjectStore { db, sealer: Some(secrets) }
    }

    /// The validated spec to store, with its git URL's credentials masked,
    /// and the sealed URL when it carried any.
    fn for_storage(&self, spec: &ServiceSpec) -> Result<(ServiceSpec, Option<String>)> {
        let mut spec = spec.validate()?;
        let masked = validate::redact_url(&spec.git_url);
        let sealed = match &self.sealer {
            Some(sealer) if masked != spec.git_url => Some(sealer.seal(&spec.git_url)),
            _ => None,
        };
        if sealed.is_some() {
            spec.git_url = masked;
        }
        Ok((spec, sealed))
    }

    pub async fn create_project(&self, name: &str) -> Result<Project> {
        let name = validate::slug("project", name)?;
        let created_at = now_rfc3339();
        let id = sqlx::query_scalar("INSERT INTO projects (name, created_at) VALUES (?, ?) RETURNING id")
            .bind(&name)
            .bind(&created_at)
            .fetch_one(&self.db)
            .await
            .map_err(conflict_on("project", "a project with this name exists"))?;
        Ok(Project { id, name, created_at })
    }

    pub async fn rename_project(&self, id: i64, name: &str) -> Result<Project> {
        let name = validate::slug("project", name)?;
        let row = sqlx::query("UPDATE projects SET name = ? WHERE id = ? RETURNING id, name, created_at")
            .bind(&name)
            .bind(id)
            .fetch_optional(&self.db)
            .await
            .map_err(conflict_on("project", "a project with this name exists"))?
            .ok_or(ProjectError::NotFound { what: "project" })?;
        Ok(Project {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// Deletes an empty project; delete its services first.
    pub async fn delete_project(&self, id: i64) -> Result<()> {
        // IMMEDIATE: take the write lock before the check, so nothing slips in.
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let services: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM services WHERE project_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if services > 0 {
            return Err(ProjectError::InUse(format!("the project still has {services} service(s)")));
        }
        let done = sqlx::query("DELETE FROM projects WHERE id = ?").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(ProjectError::NotFound { what: "project" });
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_project(&self, id: i64) -> Result<Project> {
        let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(ProjectError::NotFound { what: "project" })?;
        Ok(Project {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// All projects, by name.
    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM projects ORDER BY name")
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn create_service(&self, project_id: i64, spec: &ServiceSpec) -> Result<Service> {
        let (spec, sealed) = self.for_storage(spec)?;
        let now = now_rfc3339();
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let project: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = ?")
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
        project.ok_or(ProjectError::NotFound { what: "project" })?;
        let source = image_source(&mut tx, project_id, None, &spec).await?;
        let cols = SpecRow::new(&spec, source)?;
        let marks = vec!["?"; SPEC_COLUMNS.split(',').count()].join(", ");
        let sql = format!(
            "INSERT INTO services (project_id, {SPEC_COLUMNS}, git_url_sealed, created_at, updated_at) \
             VALUES (?, {marks}, ?, ?, ?) RETURNING id"
        );
        let id: i64 = bind_spec(sqlx::query(&sql).bind(project_id), &spec, &cols)
            .bind(&sealed)
            .bind(&now)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict_on("service", "a service with this name exists in the project"))?
            .try_get(0)?;
        ports::save(&mut tx, id, &spec.ports).await?;
        order::save(&mut tx, project_id, id, &spec.deploy_after).await?;
        tx.commit().await?;
        self.get_service(id).await
    }

    /// Replaces a service's settings (its name included).
    pub async fn update_service(&self, id: i64, spec: &ServiceSpec) -> Result<Service> {
        let (spec, sealed) = self.for_storage(spec)?;
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let project_id: i64 = sqlx::query_scalar("SELECT project_id FROM services WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ProjectError::NotFound { what: "service" })?;
        let source = image_source(&mut tx, project_id, Some(id), &spec).await?;
        if !spec.builds_own_image() {
            let dependents: Vec<String> =
                sqlx::query_scalar("SELECT name FROM services WHERE image_from_id = ? ORDER BY name")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            if !dependents.is_empty() {
                let field = if spec.kind == ServiceKind::Image { "kind" } else { "image_from" };
                return Err(ProjectError::Conflict {
                    field,
                    message: format!(
                        "{} take(s) the image of this service, so it must keep building its own",
                        dependents.join(", ")
                    ),
                });
            }
        }
        let cols = SpecRow::new(&spec, source)?;
        let sql = format!(
            "UPDATE services SET {}, git_url_sealed = ?, updated_at = ? WHERE id = ?",
            row::spec_assignments()
        );
        bind_spec(sqlx::query(&sql), &spec, &cols)
            .bind(&sealed)
            .bind(now_rfc3339())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on("service", "a service with this name exists in the project"))?;
        ports::save(&mut tx, id, &spec.ports).await?;
        order::save(&mut tx, project_id, id, &spec.deploy_after).await?;
        tx.commit().await?;
        self.get_service(id).await
    }

    /// The services that take their image from `id`, by name.
    pub async fn dependents(&self, id: i64) -> Result<Vec<Service>> {
        let rows = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE image_from_id = ? AND deleting_at IS NULL ORDER BY name"
        ))
        .bind(id)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(row_to_service).collect()
    }

    /// Deletes a service and its history. Refused while it has queued or
    /// running jobs; its containers must be removed by the caller first.
    pub async fn delete_service(&self, id: i64) -> Result<()> {
        // IMMEDIATE: take the write lock before the check, so nothing slips in.
        let mut tx = self.db.begin_with("BEGIN IMMEDIATE").await?;
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE service_id = ? AND status IN ('queued', 'running')",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if active > 0 {
            return Err(ProjectError::InUse(format!("the service has {active} queued or running job(s)")));
        }
        let done = sqlx::query("DELETE FROM services WHERE id = ?").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(ProjectError::NotFound { what: "service" });
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_service(&self, id: i64) -> Result<Service> {
        let row = sqlx::query(&format!("SELECT {SERVICE_COLUMNS} FROM services WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .ok_or(ProjectError::NotFound { what: "service" })?;
        row_to_service(&row)
    }

    /// A service and its project, read in one query.
    pub async fn get_service_and_project(&self, id: i64) -> Result<(Project, Service)> {
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS}, \
             (SELECT name FROM projects WHERE id = services.project_id) AS project_name, \
             (SELECT created_at FROM projects WHERE id = services.project_id) AS project_created_at \
             FROM services WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?
        .ok_or(ProjectError::NotFound { what: "service" })?;
        let service = row_to_service(&row)?;
        let project = Project {
            id: service.project_id,
            name: row.try_get("project_name")?,
            created_at: row.try_get("project_created_at")?,
        };
        Ok((project, service))
    }

    /// A project's services, by name.
    pub async fn list_services(&self, project_id: i64) -> Result<Vec<Service>> {
        let rows = sqlx::query(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services WHERE project_id = ? ORDER BY name"
        ))
        .bind(project_id)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(row_to_service).collect()
    }
}

/// The id of the service `spec.image_from` names: in the same project,
/// not `this` one, and building its own image (no chains).
async fn image_source(
    tx: &mut sqlx::SqliteConnection,
    project_id: i64,
    this: Option<i64>,
    spec: &ServiceSpec,
) -> Result<Option<i64>> {
    let Some(name) = spec.image_from.as_deref() else {
        return Ok(None);
    };
    if this.is_none() && name == spec.name {
        return Err(ProjectError::Conflict {
            field: "image_from",
            message: "a service cannot take its image from itself".into(),
        });
    }
    let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, kind, image_from_id FROM services WHERE project_id = ? AND name = ? AND deleting_at IS NULL",
    )
    .bind(project_id)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    // 409: the value is well-formed; the project's services refuse it.
    let invalid = |message: String| ProjectError::Conflict { field: "image_from", message };
    match row {
        None => Err(invalid(format!("there is no service named {name} in this project"))),
        Some((id, _, _)) if Some(id) == this => {
            Err(invalid("a service cannot take its image from itself".into()))
        }
        Some((_, kind, _)) if kind == "image" => {
            Err(invalid(format!("{name} is an image service; use its image reference instead")))
        }
        Some((_, _, Some(_))) => Err(invalid(format!(
            "{name} takes its image from another service; name the service that builds it"
        ))),
        Some((id, _, None)) => Ok(Some(id)),
    }
}

#[cfg(test)]
mod tests;
