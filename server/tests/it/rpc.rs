//! A client of the in-process router (`tower::oneshot`, no sockets): server
//! functions as the signed-in dashboard sends them, REST calls with a bearer
//! token as the CLI sends them.

use std::net::SocketAddr;

use app::{wire::FieldError, AppError};
use axum::{body::Body, extract::ConnectInfo, Router};
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:3000";
const ORIGIN: &str = "http://127.0.0.1:3000";

pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error a server function answered.
    pub fn app_error(&self) -> anyhow::Result<AppError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| anyhow::anyhow!("not an AppError ({e}): {} {}", self.status, self.text))
    }

    /// The fields a refusal names, sorted.
    pub fn refused_fields(&self) -> anyhow::Result<Vec<FieldError>> {
        let mut list = self.app_error()?.field_errors();
        list.sort_by(|a, b| a.field.cmp(&b.field));
        Ok(list)
    }
}

pub(crate) struct Client {
    router: Router,
    cookie: Option<String>,
}

impl Client {
    /// Signs `name` in through `/rpc/login`, as the login form does.
    pub async fn sign_in(router: &Router, name: &str, password: &str) -> anyhow::Result<Client> {
        let body = format!("name={name}&password={}", password.replace(' ', "+"));
        let req = request(Method::POST, "/rpc/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))?;
        let res = send(router, req).await?;
        anyhow::ensure!(res.0 == StatusCode::OK, "sign-in of {name}: {} {}", res.0, res.2);
        let cookie = res.1.iter().find_map(|c| c.strip_prefix("id=")?.split(';').next().map(str::to_owned));
        anyhow::ensure!(cookie.is_some(), "no session cookie for {name}");
        Ok(Client { router: router.clone(), cookie })
    }

    /// Calls the server function `/rpc/<endpoint>` with a JSON body.
    pub async fn rpc(&self, endpoint: &str, body: Value) -> anyhow::Result<Answer> {
        self.rpc_body(endpoint, Body::from(body.to_string())).await
    }

    /// Calls the server function `/rpc/<endpoint>` with `body` as it is
    /// (e.g. a stream of unknown length), typed as JSON.
    pub async fn rpc_body(&self, endpoint: &str, body: Body) -> anyhow::Result<Answer> {
        let mut req = request(Method::POST, &format!("/rpc/{endpoint}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(id) = &self.cookie {
            req = req.header(header::COOKIE, format!("id={id}"));
        }
        answer(send(&self.router, req.body(body)?).await?)
    }
}

/// A REST call with a bearer token.
pub(crate) async fn api(
    router: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<Answer> {
    let req = request(method, path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
    answer(send(router, req).await?)
}

fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::ACCEPT, "application/json")
}

async fn send(router: &Router, mut req: Request<Body>) -> anyhow::Result<(StatusCode, Vec<String>, String)> {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
    let res = router.clone().oneshot(req).await?;
    let status = res.status();
    let cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let text = String::from_utf8_lossy(&res.into_body().collect().await?.to_bytes()).into_owned();
    Ok((status, cookies, text))
}

fn answer((status, _, text): (StatusCode, Vec<String>, String)) -> anyhow::Result<Answer> {
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, body, text })
}
