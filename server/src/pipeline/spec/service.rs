//! `services`: containers that run beside the steps for the whole run,
//! reachable by their name on the run's network.

use std::time::Duration;

use super::values::{self, command, environment, image};
use super::walk::{key_path, Walk};
use super::yaml::Node;
use super::{Command, Healthcheck, Service};

/// Most services one run may start.
pub const MAX_SERVICES: usize = 16;

/// Health check defaults (Docker's own are 30 s apart: far too slow for CI).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 60;
pub const DEFAULT_START_PERIOD: Duration = Duration::ZERO;

const SERVICE_KEYS: &[&str] = &["image", "environment", "command", "healthcheck"];
const HEALTH_KEYS: &[&str] = &["cmd", "interval", "retries", "start_period", "timeout"];

pub(super) fn parse_all(w: &mut Walk, node: &Node, path: &str) -> Option<Vec<Service>> {
    let fields = w.map(node, path)?;
    if fields.entries.len() > MAX_SERVICES {
        w.err(node.at, path, format!("at most {MAX_SERVICES} services are allowed"));
        return None;
    }
    let mut out = Vec::with_capacity(fields.entries.len());
    let mut ok = true;
    for (name, key, value) in &fields.entries {
        let field = key_path(path, name);
        let name_ok = values::service_name(w, name, key.at, &field);
        match service(w, name, key, value, &field) {
            Some(s) if name_ok => out.push(s),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn service(w: &mut Walk, name: &str, key: &Node, node: &Node, path: &str) -> Option<Service> {
    let fields = w.fields(node, path, SERVICE_KEYS, "a service")?;
    let mut ok = true;
    let image = match fields.get("image") {
        Some(n) => image(w, n, &fields.path_of("image")),
        None => {
            w.err(key.at, &fields.path_of("image"), "a service needs an image");
            None
        }
    };
    let environment = match fields.get("environment") {
        Some(n) => environment(w, n, &fields.path_of("environment")),
        None => Some(Vec::new()),
    };
    let mut command_v = None;
    if let Some(n) = fields.get("command") {
        command_v = command(w, n, &fields.path_of("command"));
        ok &= command_v.is_some();
    }
    let mut healthcheck_v = None;
    if let Some(n) = fields.get("healthcheck") {
        healthcheck_v = healthcheck(w, n, &fields.path_of("healthcheck"));
        ok &= healthcheck_v.is_some();
    }
    let (image, environment) = (image?, environment?);
    ok.then(|| Service {
        name: name.to_string(),
        image,
        environment,
        command: command_v,
        healthcheck: healthcheck_v,
        position: key.at,
    })
}

fn healthcheck(w: &mut Walk, node: &Node, path: &str) -> Option<Healthcheck> {
    let fields = w.fields(node, path, HEALTH_KEYS, "a health check")?;
    let cmd: Option<Command> = match fields.get("cmd") {
        Some(n) => command(w, n, &fields.path_of("cmd")),
        None => {
            w.err(node.at, &fields.path_of("cmd"), "a health check needs cmd");
            None
        }
    };
    let ms = Duration::from_millis;
    let mut ok = true;
    let mut get = |key: &str, default: Duration, min: Duration, max: Duration| match fields.get(key) {
        Some(n) => {
            let d = values::duration(w, n, &fields.path_of(key), min, max);
            ok &= d.is_some();
            d.unwrap_or(default)
        }
        None => default,
    };
    let interval = get("interval", DEFAULT_INTERVAL, ms(100), Duration::from_secs(600));
    let timeout = get("timeout", DEFAULT_TIMEOUT, ms(100), Duration::from_secs(600));
    let start_period = get("start_period", DEFAULT_START_PERIOD, Duration::ZERO, Duration::from_secs(3600));
    let retries = match fields.get("retries") {
        Some(n) => {
            let r = w.uint(n, &fields.path_of("retries"), 1, 1000);
            ok &= r.is_some();
            r.and_then(|r| u32::try_from(r).ok()).unwrap_or(DEFAULT_RETRIES)
        }
        None => DEFAULT_RETRIES,
    };
    let cmd = cmd?;
    ok.then_some(Healthcheck { cmd, interval, timeout, retries, start_period })
}
