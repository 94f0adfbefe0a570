//! Dashboard forms are checked whole: one submission with several bad
//! fields answers every one of them (field and plain message) in one 422,
//! through the real server functions; nothing is written. The REST API's
//! 422 body lists the same fields in `error.fields`.

use app::wire::{EnvVar, Role, ServiceSettings};
use http::{Method, StatusCode};
use serde_json::json;
use server::{projects::ProjectStore, testkit::app::OpenedApp};

use crate::rpc::{api, Answer, Client};

const PW: &str = "correct horse battery";

/// The field names of a 422, sorted, after checking each message reads as
/// a plain sentence about its field (no `field:` or `not allowed:` prefix).
fn fields_of(answer: &Answer) -> anyhow::Result<Vec<String>> {
    anyhow::ensure!(answer.status == StatusCode::UNPROCESSABLE_ENTITY, "{} {}", answer.status, answer.text);
    let list = answer.refused_fields()?;
    for e in &list {
        anyhow::ensure!(!e.message.is_empty(), "an empty message for {}", e.field);
        anyhow::ensure!(
            !e.message.starts_with(&format!("{}:", e.field)) && !e.message.contains("not allowed:"),
            "prefixed message for {}: {}",
            e.field,
            e.message
        );
    }
    Ok(list.into_iter().map(|e| e.field).collect())
}

fn bad_settings(name: &str) -> ServiceSettings {
    ServiceSettings {
        name: name.into(),
        git_url: "ftp://example.com/repo.git".into(),
        port: Some(0),
        health_retries: 0,
        memory_mb: 1,
        env: vec![EnvVar { name: "1BAD".into(), value: Some("v".into()), secret: false }],
        ..ServiceSettings::defaults()
    }
}

#[tokio::test]
async fn every_bad_field_of_a_form_is_answered_in_one_round_trip() -> anyhow::Result<()> {
    let app = OpenedApp::new().await?;
    app.auth.users.create("forms-admin", PW, Role::Admin).await?;
    let admin = Client::sign_in(&app.router, "forms-admin", PW).await?;
    let store = ProjectStore::new(app.engine.db.clone());
    let project = store.create_project("forms").await?;

    // New service: six fields wrong at once, each named; nothing written.
    let answer = admin
        .rpc("create_service", json!({ "project_id": project.id, "settings": bad_settings("Bad Name!") }))
        .await?;
    assert_eq!(
        fields_of(&answer)?,
        ["env_name", "git_url", "health_retries", "memory_bytes", "port", "service"]
    );
    let memory = answer.refused_fields()?.into_iter().find(|e| e.field == "memory_bytes");
    assert_eq!(memory.map(|e| e.message).as_deref(), Some("must be between 6 and 1048576 MB"));
    assert!(store.list_services(project.id).await?.is_empty(), "a refused service was stored");

    // Service settings: the same on an existing service, which stays as it was.
    let good = ServiceSettings {
        name: "shop".into(),
        git_url: "https://example.com/shop.git".into(),
        ..ServiceSettings::defaults()
    };
    let created = admin.rpc("create_service", json!({ "project_id": project.id, "settings": good })).await?;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let service_id = created.body["id"].as_i64().unwrap_or_default();
    let update = ServiceSettings { branch: "bad..ref".into(), drain_secs: 99_999, ..bad_settings("shop") };
    let answer = admin.rpc("update_service", json!({ "service_id": service_id, "settings": update })).await?;
    assert_eq!(
        fields_of(&answer)?,
        ["branch", "drain_secs", "env_name", "git_url", "health_retries", "memory_bytes", "port"]
    );
    assert_eq!(store.get_service(service_id).await?.spec.port, Some(8080), "a refused update was stored");

    // Notification target: every field wrong.
    let target = json!({ "name": " ", "kind": "discord", "url": "ftp://x/y", "events": [] });
    let answer = admin
        .rpc("create_notification_target", json!({ "project_id": project.id, "target": target }))
        .await?;
    assert_eq!(fields_of(&answer)?, ["events", "kind", "name", "url"]);

    // Users: a bad name and a short password.
    let answer = admin
        .rpc("create_user", json!({ "name": "Not A Slug", "password": "short", "role": "viewer" }))
        .await?;
    assert_eq!(fields_of(&answer)?, ["name", "password"]);
    assert!(app.auth.users.get_by_name("Not A Slug").await?.is_none());

    // Tokens: no name and an expiry out of range.
    let answer = admin.rpc("create_token", json!({ "name": "", "expires_in_days": 100_000 })).await?;
    assert_eq!(fields_of(&answer)?, ["expires_in_days", "name"]);

    // Own password: a wrong current one and a short new one.
    let answer = admin.rpc("change_password", json!({ "current": "wrong", "new_password": "short" })).await?;
    assert_eq!(fields_of(&answer)?, ["current", "password"]);
    let message = answer.app_error()?.message();
    assert!(message.starts_with("The current password is wrong."), "{message}");

    // A single bad field keeps the one-field answer clients know.
    let answer = admin.rpc("create_token", json!({ "name": "", "expires_in_days": 30 })).await?;
    assert!(matches!(answer.app_error()?, app::AppError::InvalidField { .. }), "{}", answer.text);

    // REST: the same refusal, `error.fields` listing each field.
    let owner =
        app.auth.users.get_by_name("forms-admin").await?.ok_or_else(|| anyhow::anyhow!("no admin"))?;
    let (_, token) = app.auth.tokens.create(&owner.caller(), "forms", None).await?;
    let path = format!("/api/v1/projects/{}/services", project.id);
    let answer = api(&app.router, Method::POST, &path, &token, Some(json!(bad_settings("x!")))).await?;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "invalid_field");
    let mut listed: Vec<&str> = answer.body["error"]["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default();
    listed.sort_unstable();
    assert_eq!(listed, ["env_name", "git_url", "health_retries", "memory_bytes", "port", "service"]);
    Ok(())
}
