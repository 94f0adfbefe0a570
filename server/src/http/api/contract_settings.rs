//! `ServiceSettingsInput`: a service's settings as the API takes them. The
//! rules between fields that depend on the kind (issue 18) are stated as
//! one schema per case (`anyOf`), so a body the document accepts is never
//! refused for its shape, and one it refuses is refused by the validators.

use serde_json::{json, Value};

use super::contract::{env_value, int, nullable, replace};
use super::contract_patterns as pat;
use crate::{
    projects::{
        HEALTH_COMMAND_MAX_ARGS, HEALTH_PATH_MAX, MAX_BUILD_ARGS, MAX_COMMAND_ARGS, MAX_DEPLOY_AFTER,
        MAX_PORTS, MAX_VOLUMES, MAX_WATCH_PATH, MAX_WATCH_PATHS,
    },
    service_env::MAX_VARS,
    validate::{MAX_ENV_VALUE, MAX_GIT_REF, MAX_GIT_URL, MAX_IMAGE_REF, MAX_REL_PATH, MAX_SLUG},
};

pub(super) fn settings(doc: &mut Value, missing: &mut Vec<String>) {
    let s = "/components/schemas";
    let Some(mut input) = doc.pointer(&format!("{s}/ServiceSettings")).cloned() else {
        missing.push(format!("{s}/ServiceSettings"));
        return;
    };
    let props = json!({
        "name": { "type": "string", "pattern": pat::SLUG, "minLength": 1, "maxLength": MAX_SLUG },
        "kind": { "type": "string", "enum": ["web", "worker", "image"],
            "description": "web (port, route, probe; the default), worker (no port, no route) or image (an image reference; no git, no build)" },
        "image": nullable(json!({ "type": "string", "pattern": pat::IMAGE_REF, "maxLength": MAX_IMAGE_REF })),
        "image_from": nullable(json!({ "type": "string", "pattern": pat::SLUG, "maxLength": MAX_SLUG })),
        "command": { "type": "array", "maxItems": MAX_COMMAND_ARGS,
            "description": "the container's command, an argument vector (no shell); empty: the image's",
            "prefixItems": [ { "type": "string", "pattern": pat::PROGRAM, "maxLength": MAX_ENV_VALUE } ],
            "items": env_value() },
        "volumes": { "type": "array", "maxItems": MAX_VOLUMES,
            "description": "named volumes, kept across deploys and rollbacks; a later entry of the same name or path replaces an earlier one",
            "items": { "$ref": "#/components/schemas/VolumeInput" } },
        "settle_secs": int(0, 3600),
        "watch_paths": { "type": "array", "maxItems": MAX_WATCH_PATHS,
            "description": "a push builds the service only when a changed file matches one of these globs (`*` within a segment, `**` as a whole segment, `?`); empty: every push",
            "items": { "type": "string", "pattern": pat::WATCH_PATH, "minLength": 1, "maxLength": MAX_WATCH_PATH } },
        "deploy_after": { "type": "array", "maxItems": MAX_DEPLOY_AFTER,
            "description": "services of this project a \"deploy all\" deploys first; an unknown name or a cycle is refused (409)",
            "items": { "type": "string", "pattern": pat::SLUG, "minLength": 1, "maxLength": MAX_SLUG } },
        "ports": { "type": "array", "maxItems": MAX_PORTS,
            "description": "host ports published to container ports; a later entry of the same host port and protocol replaces an earlier one; a port another service publishes, or one in use on this machine, is refused (409)",
            "items": { "type": "object", "additionalProperties": false, "required": ["host", "container"],
                "properties": { "host": int(1, 65535), "container": int(1, 65535),
                    "protocol": { "type": "string", "enum": ["tcp", "udp"] } } } },
        "git_url": { "type": "string", "pattern": pat::GIT_URL, "minLength": 1, "maxLength": MAX_GIT_URL,
            "description": "https://, ssh://, git:// or (when the server allows local repositories) file:// URL, or [user@]host:path; only https may carry a password; percent-encode anything else" },
        "branch": { "type": "string", "pattern": pat::GIT_REF, "minLength": 1, "maxLength": MAX_GIT_REF },
        "context_path": { "type": "string", "pattern": pat::REL_PATH, "minLength": 1, "maxLength": MAX_REL_PATH },
        "dockerfile_path": { "type": "string", "pattern": pat::REL_PATH, "minLength": 1, "maxLength": MAX_REL_PATH },
        "build_args": { "type": "array", "maxItems": MAX_BUILD_ARGS,
            "description": "`[name, value]` pairs in order; a later pair of the same name wins",
            "items": { "type": "array", "minItems": 2, "maxItems": 2, "items": false,
                "prefixItems": [ { "type": "string", "pattern": pat::IDENTIFIER, "maxLength": 128 }, env_value() ] } },
        "port": nullable(int(1, 65535)),
        "health": { "$ref": "#/components/schemas/HealthProbeInput" },
        "health_interval_ms": int(100, 600_000),
        "health_timeout_ms": int(100, 600_000),
        "health_retries": int(1, 1000),
        "health_start_period_ms": int(0, 3_600_000),
        "memory_mb": int(6, 1 << 20),
        "cpu_millis": int(10, 256_000),
        "auto_deploy": { "type": "boolean" },
        "build_timeout_secs": int(30, 86_400),
        "drain_secs": int(0, 3600),
        "domain": nullable(json!({ "type": "string", "pattern": pat::OPTIONAL_DOMAIN, "maxLength": 253,
            "description": "a DNS name of at least two labels; empty or null: `<service>.<project>.localhost`" })),
        "target": nullable(json!({ "type": "string", "pattern": pat::OPTIONAL_STAGE, "maxLength": 128,
            "description": "the Dockerfile stage to build; empty or null: the last stage" })),
        "no_cache": { "type": "boolean", "description": "build without the build cache (default false)" },
        "platforms": { "type": "array", "maxItems": 4, "uniqueItems": true,
            "items": { "type": "string", "enum": crate::validate::KNOWN_PLATFORMS },
            "description": "platforms to build; empty: the engine's own" },
        "pipeline_path": { "type": "string", "pattern": pat::REL_PATH, "minLength": 1, "maxLength": MAX_REL_PATH,
            "description": "the pipeline file, relative to the checkout (default .slipway.yml)" },
        "supersede_runs": { "type": "boolean",
            "description": "a newer push cancels the older pushed runs still queued or running (default true)" },
        "https_redirect": { "type": "boolean",
            "description": "the edge's plain listener answers 308 to https (ACME challenge paths excepted); a service with a port only (default false)" },
        "hsts": { "type": "boolean",
            "description": "HTTPS answers carry Strict-Transport-Security (one year); a service with a port only (default false)" },
        "env": { "type": "array", "maxItems": MAX_VARS,
            "description": "in order; a later entry of the same name replaces an earlier one",
            "items": { "$ref": "#/components/schemas/EnvVarInput" } }
    });
    input["properties"] = props;
    input["additionalProperties"] = json!(false);
    if let Some(required) = input.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r != "git_url" && r != "port");
    }
    let input = kinds(&input);
    let health = json!({
        "oneOf": [
            http_probe(),
            command_probe(),
            none_probe()
        ]
    });
    let volume = json!({
        "type": "object", "additionalProperties": false, "required": ["name", "path"],
        "properties": {
            "name": { "type": "string", "pattern": pat::SLUG, "minLength": 1, "maxLength": MAX_SLUG },
            "path": { "type": "string", "pattern": pat::VOLUME_PATH, "maxLength": 256,
                "description": "an absolute path in the container: segments of letters, digits and - . _, none starting with '.'" }
        }
    });
    let env = json!({
        "type": "object", "additionalProperties": false, "required": ["name", "value", "secret"],
        "properties": {
            "name": { "type": "string", "pattern": pat::IDENTIFIER, "maxLength": 128 },
            "value": env_value(),
            "secret": { "type": "boolean" }
        },
        "description": "`value` may be null (or left out) only for a secret the service already has, which keeps its stored value"
    });
    if let Some(all) = doc.pointer_mut(s).and_then(Value::as_object_mut) {
        all.insert("ServiceSettingsInput".into(), input);
        all.insert("HealthProbeInput".into(), health);
        all.insert("VolumeInput".into(), volume);
        all.insert("EnvVarInput".into(), env);
    }
    // The two operations that take settings take them as input.
    for (path, method) in
        [("~1api~1v1~1projects~1{id}~1services", "post"), ("~1api~1v1~1services~1{id}", "put")]
    {
        let pointer = format!("/paths/{path}/{method}/requestBody/content/application~1json/schema");
        replace(doc, &pointer, json!({ "$ref": "#/components/schemas/ServiceSettingsInput" }), missing);
    }
}

fn http_probe() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["kind", "path"],
              "properties": { "kind": { "type": "string", "enum": ["http"] },
                "path": { "type": "string", "pattern": pat::HEALTH_PATH, "maxLength": HEALTH_PATH_MAX,
                    "description": "starts with '/', letters, digits and - . _ ~ / % ? = & + , : @, no '..' segment" } } })
}

fn none_probe() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["kind"],
      "description": "no probe (workers and image services): running without a restart for settle_secs",
      "properties": { "kind": { "type": "string", "enum": ["none"] } } })
}

fn command_probe() -> Value {
    json!({ "type": "object", "additionalProperties": false, "required": ["kind", "argv"],
      "properties": { "kind": { "type": "string", "enum": ["command"] },
        "argv": { "type": "array", "minItems": 1, "maxItems": HEALTH_COMMAND_MAX_ARGS,
            "description": "argument vector run in the container (no shell); the first is a program name",
            "prefixItems": [ { "type": "string", "pattern": pat::PROGRAM, "maxLength": MAX_ENV_VALUE } ],
            "items": env_value() } } })
}

/// Null or the empty string: "none".
fn none() -> Value {
    json!({ "oneOf": [ { "type": "null" }, { "type": "string", "maxLength": 0 } ] })
}

/// One schema per kind and image source: `base` with some properties
/// narrowed and some made required.
fn kinds(base: &Value) -> Value {
    let probe = |kinds: &[&str]| {
        let mut list = Vec::new();
        if kinds.contains(&"http") {
            list.push(http_probe());
        }
        if kinds.contains(&"command") {
            list.push(command_probe());
        }
        if kinds.contains(&"none") {
            list.push(none_probe());
        }
        json!({ "oneOf": list })
    };
    let git = base["properties"]["git_url"].clone();
    let empty = json!({ "type": "string", "maxLength": 0 });
    let slug = json!({ "type": "string", "pattern": pat::SLUG, "minLength": 1, "maxLength": MAX_SLUG });
    let image = json!({ "type": "string", "pattern": pat::IMAGE_REF, "maxLength": MAX_IMAGE_REF });
    let port = int(1, 65535);
    let no_port = json!({ "type": "null" });
    // Redirect and HSTS need a route, so a port.
    let off = json!({ "type": "boolean", "enum": [false], "description": "only a service with a port has a route" });
    // (description, kind, required, narrowed properties)
    let cases: Vec<(&str, &str, Vec<&str>, Value)> = vec![
        (
            "a web service that builds its image",
            "web",
            vec!["git_url", "port"],
            json!({ "port": port, "health": probe(&["http", "command"]), "image": none(), "image_from": none(), "git_url": git }),
        ),
        (
            "a web service that runs another service's image",
            "web",
            vec!["port", "image_from"],
            json!({ "port": port, "health": probe(&["http", "command"]), "image": none(), "image_from": slug, "git_url": empty }),
        ),
        (
            "a worker that builds its image",
            "worker",
            vec!["kind", "git_url"],
            json!({ "port": no_port, "domain": none(), "https_redirect": off, "hsts": off, "health": probe(&["command", "none"]), "image": none(), "image_from": none(), "git_url": git }),
        ),
        (
            "a worker that runs another service's image",
            "worker",
            vec!["kind", "image_from"],
            json!({ "port": no_port, "domain": none(), "https_redirect": off, "hsts": off, "health": probe(&["command", "none"]), "image": none(), "image_from": slug, "git_url": empty }),
        ),
        (
            "an image service with a port (routed)",
            "image",
            vec!["kind", "image", "port"],
            json!({ "port": port, "health": probe(&["http", "command", "none"]), "image": image, "image_from": none(), "git_url": empty }),
        ),
        (
            "an image service without a port",
            "image",
            vec!["kind", "image"],
            json!({ "port": no_port, "https_redirect": off, "hsts": off, "health": probe(&["command", "none"]), "image": image, "image_from": none(), "git_url": empty }),
        ),
    ];
    let variants: Vec<Value> = cases
        .into_iter()
        .map(|(description, kind, required, narrowed)| {
            let mut v = base.clone();
            v["description"] = json!(description);
            v["properties"]["kind"] = json!({ "type": "string", "enum": [kind] });
            if let (Some(props), Some(narrowed)) = (v["properties"].as_object_mut(), narrowed.as_object()) {
                for (name, schema) in narrowed {
                    props.insert(name.clone(), schema.clone());
                }
            }
            if let Some(list) = v.get_mut("required").and_then(Value::as_array_mut) {
                list.extend(required.into_iter().map(|r| json!(r)));
            }
            v
        })
        .collect();
    json!({
        "description": "A service's settings as submitted. Every field is checked as stated; unknown fields are refused. Which fields apply depends on `kind` and `image_from` (one case each).",
        "anyOf": variants
    })
}
