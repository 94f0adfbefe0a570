//! Uploaded certificates (issue 15): through the real router (REST with an
//! admin's token, and the dashboard's server functions) into the same
//! certificate store the HTTPS listener serves from. An upload is served by
//! name at once, a renewal uploaded replaces it, a delete stops it; the key
//! never reaches the database in the clear. Hostile uploads (a key of
//! another certificate, garbage PEM, an expired certificate, 10 MB) get a
//! clear 4xx naming the field and store nothing.
//!
//! The real `slipway serve` is covered too: an upload through its API is
//! served by its HTTPS listener at once and again after `kill -9` and a
//! restart (loaded before the listener accepts).

use std::sync::Arc;
use std::time::Duration;

use app::wire::Role;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use server::{
    deploys::switch::RouteSwitch,
    edge::EdgeRouter,
    testkit::{
        app::OpenedApp,
        tls::{get, TestCa},
        wait::unique_suffix,
    },
};

use crate::edge_tls::{route, tls_edge, upstream};
use crate::registry::{contains, data_dir_bytes};
use crate::rpc::{api, Client};

const PW: &str = "correct horse battery";

/// The app over an engine whose certificate store is `edge`'s.
async fn app_for(edge: &Arc<EdgeRouter>) -> anyhow::Result<OpenedApp> {
    let certs = edge.certs.clone();
    OpenedApp::with_settings(move |s| s.certs = certs).await
}

async fn token(app: &OpenedApp, name: &str, role: Role) -> anyhow::Result<String> {
    let user = app.auth.users.create(name, PW, role).await?;
    Ok(app.auth.tokens.create(&user.caller(), "certs", None).await?.1)
}

async fn rows(app: &OpenedApp) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM edge_certificates").fetch_one(&app.engine.db).await?)
}

async fn audited(app: &OpenedApp) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT action FROM audit_events WHERE action LIKE 'certificate.%' ORDER BY id")
        .fetch_all(&app.engine.db)
        .await?)
}

fn upload_body(chain: &str, key: &str) -> Option<Value> {
    Some(json!({ "chain_pem": chain, "key_pem": key }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_served_by_name_a_renewal_replaces_it_and_a_delete_stops_it() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let edge = Arc::new(EdgeRouter::new());
    let app = app_for(&edge).await?;
    let tls = tls_edge(edge.clone()).await?;
    let admin = token(&app, "cert-admin", Role::Admin).await?;
    let viewer = token(&app, "cert-viewer", Role::Viewer).await?;
    let zone = format!("u{}.certs.test", unique_suffix());
    let (name, other) = (format!("app.{zone}"), format!("x.apps.{zone}"));
    edge.switch(route(1, &name, upstream("APP").await?)).await?;
    edge.switch(route(2, &other, upstream("X").await?)).await?;
    let first = ca.issue(&[&name, &format!("*.apps.{zone}")])?;

    let created = api(
        &app.router,
        Method::POST,
        "/api/v1/certificates",
        &admin,
        upload_body(&first.chain_pem, &first.key_pem),
    )
    .await?;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["names"], json!([name, format!("*.apps.{zone}")]));
    assert_eq!(
        (created.body["source"].as_str(), created.body["state"].as_str()),
        (Some("upload"), Some("valid"))
    );
    assert!(!created.text.contains("PRIVATE KEY"), "no key is answered: {}", created.text);
    let first_id = created.body["id"].as_i64().expect("an upload has an id");

    // Served at once, by name and by wildcard, over HTTP/1.1 and HTTP/2.
    for (host, label) in [(&name, "APP"), (&other, "X")] {
        for alpn in ["http/1.1", "h2"] {
            let answer = get(tls.addr, host, "/", ca.client(&[alpn])?).await?;
            assert_eq!(
                (answer.status, answer.body.as_str()),
                (200, format!("{label} https").as_str()),
                "{host} {alpn}"
            );
            assert_eq!(answer.peer, first.der, "{host} gets the uploaded certificate");
        }
    }

    // The key is sealed: no line of its base64 is anywhere in the data dir.
    let key_line = first.key_pem.lines().nth(1).expect("a PEM body line");
    assert!(!contains(&data_dir_bytes(app.data.path())?, key_line), "the key is stored in the clear");

    // A renewal (same names) replaces it: one row, the new certificate served.
    let renewed = ca.issue(&[&name, &format!("*.apps.{zone}")])?;
    let second = api(
        &app.router,
        Method::POST,
        "/api/v1/certificates",
        &admin,
        upload_body(&renewed.chain_pem, &renewed.key_pem),
    )
    .await?;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    let listed = api(&app.router, Method::GET, "/api/v1/certificates", &viewer, None).await?;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let ids: Vec<_> = listed.body.as_array().expect("a list").iter().map(|c| c["id"].as_i64()).collect();
    assert_eq!(ids, [second.body["id"].as_i64()], "the renewal replaced #{first_id}");
    assert_eq!(get(tls.addr, &name, "/", ca.client(&["h2"])?).await?.peer, renewed.der);

    // A viewer may list but not upload or delete.
    let refused = api(
        &app.router,
        Method::POST,
        "/api/v1/certificates",
        &viewer,
        upload_body(&first.chain_pem, &first.key_pem),
    )
    .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);

    let second_id = second.body["id"].as_i64().expect("an id");
    let path = format!("/api/v1/certificates/{second_id}");
    let deleted = api(&app.router, Method::DELETE, &path, &admin, None).await?;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert!(
        get(tls.addr, &name, "/", ca.client(&["h2"])?).await.is_err(),
        "a deleted certificate's name has none"
    );
    assert_eq!(api(&app.router, Method::DELETE, &path, &admin, None).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(rows(&app).await?, 0);
    assert_eq!(audited(&app).await?, ["certificate.upload", "certificate.upload", "certificate.delete"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_get_a_clear_4xx_naming_the_field_and_store_nothing() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let edge = Arc::new(EdgeRouter::new());
    let app = app_for(&edge).await?;
    let admin = token(&app, "hostile-admin", Role::Admin).await?;
    app.auth.users.create("hostile-web", PW, Role::Admin).await?;
    let browser = Client::sign_in(&app.router, "hostile-web", PW).await?;
    let good = ca.issue(&["good.hostile.test"])?;
    let stranger = ca.issue(&["other.hostile.test"])?;
    let expired = ca.issue_valid(&["old.hostile.test"], (2020, 1, 1), (2021, 1, 1))?;
    let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    let cases = [
        (
            "a key of another certificate",
            good.chain_pem.clone(),
            stranger.key_pem.clone(),
            "key_pem",
            "does not belong",
        ),
        ("garbage PEM", garbage.to_string(), good.key_pem.clone(), "chain_pem", "cannot be read"),
        ("no PEM at all", "hello".to_string(), good.key_pem.clone(), "chain_pem", "no PEM certificate"),
        (
            "an expired certificate",
            expired.chain_pem.clone(),
            expired.key_pem.clone(),
            "chain_pem",
            "expired at 2021-01-01",
        ),
    ];
    for (what, chain, key, field, says) in cases {
        let answer =
            api(&app.router, Method::POST, "/api/v1/certificates", &admin, upload_body(&chain, &key)).await?;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {}", answer.text);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field) && message.contains(says), "{what}: {message}");
        let rpc = browser
            .rpc("upload_certificate", json!({ "form": { "chain_pem": chain, "key_pem": key } }))
            .await?;
        assert_eq!(rpc.status, StatusCode::UNPROCESSABLE_ENTITY, "{what} (dashboard): {}", rpc.text);
        let fields = rpc.refused_fields()?;
        assert_eq!(
            fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
            [field],
            "{what} (dashboard)"
        );
    }
    // A key on one line (newlines lost on the way): refused, and the
    // answer quotes none of it.
    let one_line = good.key_pem.replace('\n', " ");
    let answer = api(
        &app.router,
        Method::POST,
        "/api/v1/certificates",
        &admin,
        upload_body(&good.chain_pem, &one_line),
    )
    .await?;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text);
    let rpc = browser
        .rpc("upload_certificate", json!({ "form": { "chain_pem": one_line, "key_pem": good.key_pem } }))
        .await?;
    assert_eq!(rpc.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", rpc.text);
    let secret = &good.key_pem.lines().nth(1).expect("a PEM body line")[..24];
    // As text, or as the byte list a parser's error would print.
    let listed = format!("{:?}", secret.as_bytes());
    let listed = listed.trim_start_matches('[').trim_end_matches(']');
    for text in [&answer.text, &rpc.text] {
        assert!(!text.contains(secret) && !text.contains(listed), "the key is quoted back: {text}");
    }

    // 10 MB: refused before it is read whole, by both doors.
    let huge = "A".repeat(10 * 1024 * 1024);
    let answer =
        api(&app.router, Method::POST, "/api/v1/certificates", &admin, upload_body(&huge, &good.key_pem))
            .await?;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], "too_large");
    let rpc = browser
        .rpc("upload_certificate", json!({ "form": { "chain_pem": huge, "key_pem": good.key_pem } }))
        .await?;
    assert_eq!(rpc.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", rpc.text);
    // Without a declared length (chunked): refused once read past the limit.
    let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 256 * 1024])));
    let streamed = axum::body::Body::from_stream(futures::stream::iter(chunks));
    let rpc = browser.rpc_body("upload_certificate", streamed).await?;
    assert_eq!(rpc.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", rpc.text);
    assert!(rpc.app_error()?.message().contains("larger than 256 KiB"), "{}", rpc.text);

    assert_eq!(rows(&app).await?, 0, "nothing is stored");
    assert!(audited(&app).await?.is_empty(), "nothing is audited");
    assert!(edge.certs.all().is_empty(), "nothing is served");
    Ok(())
}

/// Polls until `name` is served over TLS at `addr` with `der`.
async fn until_served(addr: std::net::SocketAddr, ca: &TestCa, name: &str, der: &[u8]) -> anyhow::Result<()> {
    let limit = Duration::from_secs(30);
    server::testkit::wait::wait_until(&format!("{name} served with its certificate"), limit, || async {
        Ok(match get(addr, name, "/", ca.client(&["http/1.1"])?).await {
            Ok(answer) if answer.peer.as_ref() == der => Some(()),
            _ => None,
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_serves_an_upload_at_once_and_again_after_kill_9() -> anyhow::Result<()> {
    let ca = TestCa::new()?;
    let install = server::testkit::installation::Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let auth = server::auth::Auth::open(install.db.clone(), Default::default()).await?;
    let admin = auth.users.create("proc-admin", PW, Role::Admin).await?;
    let (_, token) = auth.tokens.create(&admin.caller(), "proc", None).await?;
    let tls_addr: std::net::SocketAddr = format!("127.0.0.1:{}", server::testkit::free_port()?).parse()?;
    let env = [("SLIPWAY_EDGE_TLS_ADDR", tls_addr.to_string())];
    let name = format!("p{}.certs.test", unique_suffix());
    let issued = ca.issue(&[&name])?;

    let mut running = install.start_server_with(&env).await?;
    let http = reqwest::Client::new();
    let created = http
        .post(running.url("/api/v1/certificates"))
        .bearer_auth(&token)
        .json(&json!({ "chain_pem": issued.chain_pem, "key_pem": issued.key_pem }))
        .send()
        .await?;
    assert_eq!(created.status().as_u16(), 201, "{}", created.text().await?);
    // No route for the name: the edge answers 404, over the uploaded certificate.
    until_served(tls_addr, &ca, &name, &issued.der).await?;
    assert_eq!(get(tls_addr, &name, "/", ca.client(&["h2"])?).await?.status, 404);

    running.kill();
    let restarted = install.start_server_with(&env).await?;
    until_served(tls_addr, &ca, &name, &issued.der).await?;
    let listed: Value =
        http.get(restarted.url("/api/v1/certificates")).bearer_auth(&token).send().await?.json().await?;
    let id = listed[0]["id"].as_i64().expect("the upload is listed after the restart");
    let deleted =
        http.delete(restarted.url(&format!("/api/v1/certificates/{id}"))).bearer_auth(&token).send().await?;
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(
        get(tls_addr, &name, "/", ca.client(&["h2"])?).await.is_err(),
        "deleted: no certificate for the name"
    );
    let log = restarted.log();
    assert!(!log.contains(issued.key_pem.lines().nth(1).unwrap_or("-")), "the key reached the log");
    Ok(())
}
