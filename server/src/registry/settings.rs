//! A project's registry settings: host, image path, credentials. The
//! password (or token) is sealed at rest and never answered: views say only
//! whether one is set.

use app::wire::{Caller, Role};
pub use app::wire::{RegistryForm, RegistryView};
use sqlx::Row;

use crate::{
    access::require,
    audit::{self, Event},
    db::Db,
    docker::registry::Credentials,
    engine::{Engine, EngineError},
    secrets::Secrets,
    validate::{self, Problems},
};

/// Longest user name accepted, in characters.
const MAX_USERNAME: usize = 255;
/// Longest password or token accepted, in characters.
const MAX_PASSWORD: usize = 4096;

/// A project's registry as stored, the password still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub project_id: i64,
    /// `host[:port]`.
    pub host: String,
    /// The path under the host; a service's images go to
    /// `<host>/<image>/<service>`.
    pub image: String,
    pub username: Option<String>,
    password_sealed: Option<String>,
}

impl Registry {
    /// The repository a service's images are pushed to.
    pub fn repository(&self, service: &str) -> String {
        format!("{}/{}/{service}", self.host, self.image)
    }

    /// The credentials for the engine, the password opened.
    pub fn credentials(&self, secrets: &Secrets) -> anyhow::Result<Credentials> {
        let password = match &self.password_sealed {
            Some(sealed) => Some(
                secrets
                    .open(sealed)
                    .map_err(|e| anyhow::anyhow!("cannot open the registry password of the project: {e}"))?,
            ),
            None => None,
        };
        Ok(Credentials { server: self.host.clone(), username: self.username.clone(), password })
    }
}

impl From<&Registry> for RegistryView {
    fn from(r: &Registry) -> Self {
        RegistryView {
            project_id: r.project_id,
            host: r.host.clone(),
            image: r.image.clone(),
            username: r.username.clone(),
            password_set: r.password_sealed.is_some(),
            repository_pattern: format!("{}/{}/<service>", r.host, r.image),
        }
    }
}

/// A project's registry, if it has one.
pub async fn of_project(db: &Db, project_id: i64) -> anyhow::Result<Option<Registry>> {
    let row = sqlx::query(
        "SELECT project_id, host, image, username, password_sealed FROM project_registries WHERE project_id = ?",
    )
    .bind(project_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Registry {
        project_id: row.try_get("project_id")?,
        host: row.try_get("host")?,
        image: row.try_get("image")?,
        username: row.try_get("username")?,
        password_sealed: row.try_get("password_sealed")?,
    }))
}

/// The form checked whole: every bad field named at once.
fn check(form: &RegistryForm) -> Result<(String, String, Option<String>, Option<String>), EngineError> {
    let mut p = Problems::new();
    let host = p.check(validate::registry_host(&form.host));
    let image = p.check(validate::image_repository("registry_image", &form.image));
    let username = form.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(u) = &form.username {
        if u.chars().count() > MAX_USERNAME || u.chars().any(|c| c.is_control() || c == ':') {
            p.add(
                "registry_username",
                format!("must be at most {MAX_USERNAME} characters, without ':' or control characters"),
            );
        }
    }
    let password = form.password.as_deref().filter(|p| !p.is_empty());
    if let Some(pw) = &form.password {
        if pw.chars().count() > MAX_PASSWORD || pw.chars().any(char::is_control) {
            p.add(
                "registry_password",
                format!("must be at most {MAX_PASSWORD} characters, without control characters"),
            );
        }
    }
    p.finish().map_err(EngineError::of_fields)?;
    match (host, image) {
        (Some(h), Some(i)) => Ok((h, i, username.map(str::to_string), password.map(str::to_string))),
        _ => Err(EngineError::Invalid { field: "registry_host", message: "is required".into() }),
    }
}

impl Engine {
    /// A project's registry, masked (viewer); `None` when it has none.
    pub async fn project_registry(
        &self,
        caller: &Caller,
        project_id: i64,
    ) -> Result<Option<RegistryView>, EngineError> {
        require(caller, Role::Viewer)?;
        crate::projects::ProjectStore::new(self.db.clone()).get_project(project_id).await?;
        Ok(of_project(&self.db, project_id).await?.as_ref().map(RegistryView::from))
    }

    /// Sets a project's registry (admin), the password sealed; an empty
    /// password keeps the stored one. Audited, without the password.
    pub async fn set_project_registry(
        &self,
        caller: &Caller,
        project_id: i64,
        form: RegistryForm,
    ) -> Result<RegistryView, EngineError> {
        require(caller, Role::Admin)?;
        let (host, image, username, password) = check(&form)?;
        crate::projects::ProjectStore::new(self.db.clone()).get_project(project_id).await?;
        let sealed = password.map(|p| self.secrets.seal(&p));
        // COALESCE keeps the stored password when none was given.
        sqlx::query(
            "INSERT INTO project_registries (project_id, host, image, username, password_sealed, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (project_id) DO UPDATE SET host = ?2, image = ?3, username = ?4, \
             password_sealed = COALESCE(?5, project_registries.password_sealed), updated_at = ?6",
        )
        .bind(project_id)
        .bind(&host)
        .bind(&image)
        .bind(&username)
        .bind(&sealed)
        .bind(crate::db::now_rfc3339())
        .execute(&self.db)
        .await?;
        let stored = of_project(&self.db, project_id).await?.ok_or(EngineError::NotFound("registry"))?;
        audit::record(
            &self.db,
            Event::by(caller, "registry.set")
                .target(format!("project:{project_id}"))
                .detail(format!("{host}/{image} user={}", username.as_deref().unwrap_or("-"))),
        )
        .await;
        tracing::info!(project_id, %host, %image, "registry set");
        Ok(RegistryView::from(&stored))
    }

    /// Removes a project's registry (admin): builds stay local again.
    pub async fn clear_project_registry(&self, caller: &Caller, project_id: i64) -> Result<(), EngineError> {
        require(caller, Role::Admin)?;
        crate::projects::ProjectStore::new(self.db.clone()).get_project(project_id).await?;
        let done = sqlx::query("DELETE FROM project_registries WHERE project_id = ?")
            .bind(project_id)
            .execute(&self.db)
            .await?;
        // Idempotent: a project without a registry answers the same.
        if done.rows_affected() > 0 {
            let event = Event::by(caller, "registry.clear").target(format!("project:{project_id}"));
            audit::record(&self.db, event).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(host: &str, image: &str) -> RegistryForm {
        RegistryForm { host: host.into(), image: image.into(), ..Default::default() }
    }

    #[test]
    fn the_form_is_checked_whole_and_names_each_field() {
        let e = check(&form("https://ghcr.io/x", "Team/App")).expect_err("two bad fields");
        let EngineError::Fields(list) = e else { panic!("several fields expected: {e:?}") };
        let fields: Vec<_> = list.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["registry_host", "registry_image"]);
        let ok = check(&form("127.0.0.1:5000", "team/app")).expect("valid");
        assert_eq!((ok.0.as_str(), ok.1.as_str()), ("127.0.0.1:5000", "team/app"));
        let mut colon = form("ghcr.io", "a");
        colon.username = Some("a:b".into());
        assert!(matches!(check(&colon), Err(EngineError::Invalid { field: "registry_username", .. })));
        let mut control = form("ghcr.io", "a");
        control.password = Some("a\nb".into());
        assert!(matches!(check(&control), Err(EngineError::Invalid { field: "registry_password", .. })));
        let mut empty = form("ghcr.io", "a");
        empty.password = Some(String::new());
        assert_eq!(check(&empty).expect("an empty password keeps the stored one").3, None);
    }
}
