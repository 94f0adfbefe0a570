//! The REST API checks in one order: the caller (401), then the role (403),
//! then the input (400/404/413/415/422). Every operation of the matrix
//! table (which covers exactly the documented ones) is called with a bad
//! id and a malformed body: with no token it answers 401, and with a
//! viewer's token every operation that needs more answers 403. The document
//! states each of these statuses where they can happen.

use app::wire::Role;
use axum::body::Body;
use http::{header, Method, Request};
use serde_json::Value;

use crate::api_matrix::{matrix, table, Cred, Matrix, Reply};

/// The largest `after` the document allows, on a finished build's live log:
/// the stream ends at once with `end` (it once overflowed `after + 1`).
#[tokio::test]
async fn the_live_log_after_the_last_sequence_number_just_ends() -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let m = matrix().await?;
    let (owner, token) = m.credential(Cred::User(Role::Viewer)).await?;
    let f = m.fixture("after-max", &owner).await?;
    let req = Request::get(format!("/api/v1/builds/{}/log/stream?after={}", f.good_build, u64::MAX))
        .header(header::AUTHORIZATION, format!("Bearer {}", token.unwrap_or_default()))
        .body(Body::empty())?;
    let res = m.router.clone().oneshot(req).await?;
    assert_eq!(res.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(20), res.into_body().collect()).await??;
    let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    assert!(text.contains("event: end"), "{text}");
    assert!(!text.contains("event: line"), "no line follows the last: {text}");
    Ok(())
}

/// The row's path with `id` as every path id, and the query it needs.
fn uri(path: &str, id: &str) -> String {
    let uri = path.replace("{id}", id);
    if uri.ends_with("/api/v1/projects/0") || uri.ends_with("/api/v1/services/0") {
        // The deletes: a wrong confirmation too.
        return format!("{uri}?confirm=-");
    }
    uri
}

/// A request with a bad id (`0`, `abc`) and, for a method that takes a
/// body, malformed JSON (or `text/plain` when `plain`).
async fn hostile(
    m: &Matrix,
    method: &Method,
    uri: &str,
    token: Option<&str>,
    plain: bool,
) -> anyhow::Result<Reply> {
    let mut req = Request::builder().method(method.clone()).uri(uri).header(header::HOST, "127.0.0.1:3000");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = if matches!(*method, Method::POST | Method::PUT) {
        let kind = if plain { "text/plain" } else { "application/json" };
        req.header(header::CONTENT_TYPE, kind).body(Body::from("{\"name\": "))?
    } else {
        req.body(Body::empty())?
    };
    m.send_raw(req).await
}

#[tokio::test]
async fn no_token_is_401_before_any_bad_id_or_body() -> anyhow::Result<()> {
    let m = matrix().await?;
    let mut problems = Vec::new();
    for row in table() {
        for id in ["0", "abc", "-1"] {
            for plain in [false, true] {
                let uri = uri(row.path, id);
                let reply = hostile(&m, &row.method, &uri, None, plain).await?;
                if reply.status != 401 || reply.error_code().as_deref() != Some("unauthenticated") {
                    problems.push(format!("{} {uri}: {} {}", row.method, reply.status, reply.body));
                }
            }
        }
    }
    assert!(problems.is_empty(), "not 401 first:\n{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn a_viewer_is_403_on_every_write_before_any_bad_id_or_body() -> anyhow::Result<()> {
    let m = matrix().await?;
    let (_, token) = m.credential(Cred::User(Role::Viewer)).await?;
    let mut problems = Vec::new();
    let mut refused = 0;
    for row in table() {
        // A token never mints a token: that rule is the role check of POST /tokens.
        let needs_more = row.min.is_some_and(|r| r != Role::Viewer)
            || (row.method == Method::POST && row.path == "/api/v1/tokens");
        if !needs_more {
            continue;
        }
        refused += 1;
        for id in ["0", "abc"] {
            for plain in [false, true] {
                let uri = uri(row.path, id);
                let reply = hostile(&m, &row.method, &uri, token.as_deref(), plain).await?;
                if reply.status != 403 || reply.error_code().as_deref() != Some("forbidden") {
                    problems.push(format!("{} {uri}: {} {}", row.method, reply.status, reply.body));
                }
            }
        }
    }
    assert!(refused >= 20, "only {refused} operations need more than a viewer");
    assert!(problems.is_empty(), "not 403 before the input:\n{}", problems.join("\n"));
    Ok(())
}

/// A business rule is input too: a viewer asking for a build and an image
/// at once is refused for the role.
#[tokio::test]
async fn a_viewer_deploying_a_build_and_an_image_is_403() -> anyhow::Result<()> {
    let m = matrix().await?;
    let (_, token) = m.credential(Cred::User(Role::Viewer)).await?;
    let req = Request::post("/api/v1/services/1/deployments")
        .header(header::AUTHORIZATION, format!("Bearer {}", token.unwrap_or_default()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"build_id": 1, "image": "busybox"}"#))?;
    let reply = m.send_raw(req).await?;
    assert_eq!(reply.status, 403, "{}", reply.body);
    Ok(())
}

/// Every status the two tests above and the matrix rely on is in the document.
#[test]
fn the_document_states_every_refusal_where_it_happens() {
    let doc = server::http::api::contract::document();
    let mut problems = Vec::new();
    for row in table() {
        let op = &doc["paths"][row.path][row.method.as_str().to_ascii_lowercase()];
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        let mut want = vec!["401"];
        if row.min.is_some_and(|r| r != Role::Viewer)
            || (row.method == Method::POST && row.path == "/api/v1/tokens")
        {
            want.push("403");
        }
        if op.get("requestBody").is_some() {
            want.extend(["400", "413", "415", "422"]);
        }
        if row.path.contains("{id}") {
            want.extend(["404", "422"]);
            let id = op["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["in"] == "path"))
                .map(|p| p["schema"].clone())
                .unwrap_or(Value::Null);
            if id["minimum"] != 1 || id["format"] != "int64" {
                problems.push(format!("{} {}: id schema {id}", row.method, row.path));
            }
        }
        for status in want {
            if !responses.contains_key(status) {
                problems.push(format!("{} {}: {status} undocumented", row.method, row.path));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
