//! The settings form's text values and their conversion to and from
//! [`ServiceSettings`]. Pure functions, unit-tested.

use crate::wire::{
    EnvVar, FieldError, HealthProbeForm, PortForm, ServiceKindForm, ServiceSettings, VolumeForm,
};

/// One env var row as the form holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValues {
    pub name: String,
    /// Empty for a saved secret (its value is never sent to the browser).
    pub value: String,
    pub secret: bool,
    /// The row came from the server as a secret: an empty value keeps it.
    pub saved_secret: bool,
}

/// Every form field as text (numbers too: they are parsed on submit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormValues {
    pub name: String,
    /// `web`, `worker` or `image`.
    pub kind: String,
    pub git_url: String,
    pub branch: String,
    pub context_path: String,
    pub dockerfile_path: String,
    pub build_args: String,
    /// An image service's image reference.
    pub image: String,
    /// The service whose builds this one deploys; empty: its own.
    pub image_from: String,
    /// One argument per line; empty: the image's command.
    pub command: String,
    /// `name:/path` per line.
    pub volumes: String,
    /// `host:container[/udp]` per line.
    pub ports: String,
    /// Comma- or space-separated service names.
    pub deploy_after: String,
    /// One glob per line.
    pub watch_paths: String,
    pub port: String,
    pub settle_secs: String,
    /// `http`, `command` or `none`.
    pub health_kind: String,
    pub health_path: String,
    pub health_command: String,
    pub health_interval_ms: String,
    pub health_timeout_ms: String,
    pub health_retries: String,
    pub health_start_period_ms: String,
    pub memory_mb: String,
    pub cpu_millis: String,
    pub auto_deploy: bool,
    pub build_timeout_secs: String,
    pub drain_secs: String,
    pub domain: String,
    pub target: String,
    /// Comma- or space-separated `os/arch[/variant]`.
    pub platforms: String,
    pub pipeline_path: String,
    pub no_cache: bool,
    pub supersede_runs: bool,
    pub https_redirect: bool,
    pub hsts: bool,
    pub env: Vec<EnvValues>,
}

/// The names the engine may use for each input's field, first = the input's own.
pub const FIELD_ALIASES: &[&[&str]] = &[
    &["name", "service"],
    &["git_url", "url"],
    &["branch"],
    &["context_path", "context"],
    &["dockerfile_path", "dockerfile"],
    &["build_args", "build_arg"],
    &["kind"],
    &["image"],
    &["image_from"],
    &["command"],
    &["volumes"],
    &["ports"],
    &["deploy_after"],
    &["watch_paths"],
    &["port"],
    &["settle_secs"],
    &["health_path", "health", "health_kind"],
    &["health_command"],
    &["health_interval_ms"],
    &["health_timeout_ms"],
    &["health_retries"],
    &["health_start_period_ms"],
    &["memory_mb", "memory_bytes", "memory"],
    &["cpu_millis", "cpu"],
    &["auto_deploy"],
    &["build_timeout_secs", "build_timeout"],
    &["drain_secs", "drain"],
    &["domain"],
    &["target", "build_target"],
    &["platforms"],
    &["pipeline_path"],
    &["no_cache"],
    &["supersede_runs"],
    &["https_redirect"],
    &["hsts"],
    &["env", "env_name", "env_value"],
];

/// The aliases of the input whose own field name is `field`.
pub fn aliases(field: &str) -> &'static [&'static str] {
    FIELD_ALIASES.iter().find(|a| a[0] == field).copied().unwrap_or(&[])
}

/// Whether some input shows errors about `field`.
pub fn is_known(field: &str) -> bool {
    FIELD_ALIASES.iter().any(|a| a.contains(&field))
}

impl FormValues {
    pub fn from_settings(s: &ServiceSettings) -> Self {
        let (health_kind, health_path, health_command) = match &s.health {
            HealthProbeForm::Http { path } => ("http", path.clone(), String::new()),
            HealthProbeForm::Command { argv } => ("command", String::new(), argv.join("\n")),
            HealthProbeForm::None {} => ("none", String::new(), String::new()),
        };
        FormValues {
            name: s.name.clone(),
            kind: s.kind.as_str().into(),
            image: s.image.clone().unwrap_or_default(),
            image_from: s.image_from.clone().unwrap_or_default(),
            command: s.command.join("\n"),
            volumes: s
                .volumes
                .iter()
                .map(|v| format!("{}:{}", v.name, v.path))
                .collect::<Vec<_>>()
                .join("\n"),
            deploy_after: s.deploy_after.join(", "),
            watch_paths: s.watch_paths.join("\n"),
            ports: s
                .ports
                .iter()
                .map(|p| match p.protocol.as_str() {
                    "tcp" => format!("{}:{}", p.host, p.container),
                    proto => format!("{}:{}/{proto}", p.host, p.container),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            settle_secs: s.settle_secs.to_string(),
            git_url: s.git_url.clone(),
            branch: s.branch.clone(),
            context_path: s.context_path.clone(),
            dockerfile_path: s.dockerfile_path.clone(),
            build_args: s.build_args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n"),
            port: s.port.map(|p| p.to_string()).unwrap_or_default(),
            health_kind: health_kind.into(),
            health_path,
            health_command,
            health_interval_ms: s.health_interval_ms.to_string(),
            health_timeout_ms: s.health_timeout_ms.to_string(),
            health_retries: s.health_retries.to_string(),
            health_start_period_ms: s.health_start_period_ms.to_string(),
            memory_mb: s.memory_mb.to_string(),
            cpu_millis: s.cpu_millis.to_string(),
            auto_deploy: s.auto_deploy,
            build_timeout_secs: s.build_timeout_secs.to_string(),
            drain_secs: s.drain_secs.to_string(),
            domain: s.domain.clone().unwrap_or_default(),
            target: s.target.clone().unwrap_or_default(),
            platforms: s.platforms.join(", "),
            pipeline_path: s.pipeline_path.clone(),
            no_cache: s.no_cache,
            supersede_runs: s.supersede_runs,
            https_redirect: s.https_redirect,
            hsts: s.hsts,
            env: s
                .env
                .iter()
                .map(|v| EnvValues {
                    name: v.name.clone(),
                    value: v.value.clone().unwrap_or_default(),
                    secret: v.secret,
                    saved_secret: v.secret && v.value.is_none(),
                })
                .collect(),
        }
    }

    /// The settings to submit, or the fields that are not even well-formed.
    pub fn to_settings(&self) -> Result<ServiceSettings, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut num = |field: &str, text: &str| -> u64 {
            match text.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    errors.push(field_error(field, "enter a whole number"));
                    0
                }
            }
        };
        let kind = match self.kind.as_str() {
            "worker" => ServiceKindForm::Worker,
            "image" => ServiceKindForm::Image,
            _ => ServiceKindForm::Web,
        };
        let image_from = Some(self.image_from.trim().to_string()).filter(|s| !s.is_empty());
        // Fields the kind has no use for are not sent (the form hides them).
        let builds = kind != ServiceKindForm::Image && image_from.is_none();
        let has_port =
            kind == ServiceKindForm::Web || (kind == ServiceKindForm::Image && !self.port.trim().is_empty());
        let port = if has_port { Some(num("port", &self.port)) } else { None };
        let settle_secs = num("settle_secs", &self.settle_secs);
        let health_interval_ms = num("health_interval_ms", &self.health_interval_ms);
        let health_timeout_ms = num("health_timeout_ms", &self.health_timeout_ms);
        let health_retries = num("health_retries", &self.health_retries);
        let health_start_period_ms = num("health_start_period_ms", &self.health_start_period_ms);
        let memory_mb = num("memory_mb", &self.memory_mb);
        let cpu_millis = num("cpu_millis", &self.cpu_millis);
        let build_timeout_secs = num("build_timeout_secs", &self.build_timeout_secs);
        let drain_secs = num("drain_secs", &self.drain_secs);
        let mut small = |field: &str, n: u64| -> u32 {
            u32::try_from(n).unwrap_or_else(|_| {
                errors.push(field_error(field, "too large"));
                0
            })
        };
        let settings = ServiceSettings {
            name: self.name.trim().to_string(),
            kind,
            git_url: if builds { self.git_url.trim().to_string() } else { String::new() },
            image: Some(self.image.trim().to_string())
                .filter(|i| !i.is_empty() && kind == ServiceKindForm::Image),
            image_from: image_from.filter(|_| kind != ServiceKindForm::Image),
            command: lines(&self.command).map(str::to_string).collect(),
            volumes: Vec::new(),
            ports: Vec::new(),
            watch_paths: lines(&self.watch_paths).map(|l| l.trim().to_string()).collect(),
            deploy_after: self
                .deploy_after
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            settle_secs: small("settle_secs", settle_secs),
            branch: self.branch.trim().to_string(),
            context_path: self.context_path.trim().to_string(),
            dockerfile_path: self.dockerfile_path.trim().to_string(),
            build_args: Vec::new(),
            port: port.map(|p| small("port", p)),
            health: match self.health_kind.as_str() {
                "command" => HealthProbeForm::Command {
                    argv: lines(&self.health_command).map(str::to_string).collect(),
                },
                "none" if kind != ServiceKindForm::Web => HealthProbeForm::None {},
                _ if port.is_none() => HealthProbeForm::None {},
                _ => HealthProbeForm::Http { path: self.health_path.trim().to_string() },
            },
            health_interval_ms: small("health_interval_ms", health_interval_ms),
            health_timeout_ms: small("health_timeout_ms", health_timeout_ms),
            health_retries: small("health_retries", health_retries),
            health_start_period_ms: small("health_start_period_ms", health_start_period_ms),
            memory_mb,
            cpu_millis: small("cpu_millis", cpu_millis),
            auto_deploy: self.auto_deploy,
            build_timeout_secs: small("build_timeout_secs", build_timeout_secs),
            drain_secs: small("drain_secs", drain_secs),
            domain: Some(self.domain.trim().to_string())
                .filter(|d| !d.is_empty() && kind != ServiceKindForm::Worker),
            target: Some(self.target.trim().to_string()).filter(|t| !t.is_empty()),
            platforms: self
                .platforms
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            pipeline_path: self.pipeline_path.trim().to_string(),
            no_cache: self.no_cache,
            supersede_runs: self.supersede_runs,
            https_redirect: self.https_redirect,
            hsts: self.hsts,
            env: self.env.iter().filter_map(env_var).collect(),
        };
        let build_args = parse_build_args(&self.build_args).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let volumes = parse_volumes(&self.volumes).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let ports = parse_ports(&self.ports).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        if errors.is_empty() {
            Ok(ServiceSettings { build_args, volumes, ports, ..settings })
        } else {
            Err(errors)
        }
    }
}

fn field_error(field: &str, message: &str) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

/// Non-blank lines without their line-end.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty())
}

/// A row as submitted; a blank row is dropped, a saved secret left empty is
/// sent as `None` (keep the stored value).
fn env_var(row: &EnvValues) -> Option<EnvVar> {
    let name = row.name.trim();
    if name.is_empty() && row.value.is_empty() {
        return None;
    }
    let value = if row.saved_secret && row.value.is_empty() { None } else { Some(row.value.clone()) };
    Some(EnvVar { name: name.to_string(), value, secret: row.secret })
}

/// `host:container[/tcp|/udp]` per line.
fn parse_ports(text: &str) -> Result<Vec<PortForm>, FieldError> {
    lines(text)
        .enumerate()
        .map(|(i, line)| {
            let bad = || {
                field_error(
                    "ports",
                    &format!("line {}: write host:container, e.g. 8005:8000 or 53:53/udp", i + 1),
                )
            };
            let (pair, protocol) = match line.trim().split_once('/') {
                Some((pair, proto)) => (pair, proto.trim().to_string()),
                None => (line.trim(), "tcp".to_string()),
            };
            let (host, container) = pair.split_once(':').ok_or_else(bad)?;
            let host = host.trim().parse::<u32>().map_err(|_| bad())?;
            let container = container.trim().parse::<u32>().map_err(|_| bad())?;
            Ok(PortForm { host, container, protocol })
        })
        .collect()
}

/// `name:/path` per line.
fn parse_volumes(text: &str) -> Result<Vec<VolumeForm>, FieldError> {
    lines(text)
        .enumerate()
        .map(|(i, line)| match line.split_once(':') {
            Some((name, path)) if !name.trim().is_empty() => {
                Ok(VolumeForm { name: name.trim().to_string(), path: path.trim().to_string() })
            }
            _ => Err(field_error("volumes", &format!("line {}: write name:/path/in/container", i + 1))),
        })
        .collect()
}

/// `NAME=value` per line.
fn parse_build_args(text: &str) -> Result<Vec<(String, String)>, FieldError> {
    lines(text)
        .enumerate()
        .map(|(i, line)| match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(field_error("build_args", &format!("line {}: write NAME=value", i + 1))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ServiceSettings {
        ServiceSettings {
            name: "api".into(),
            build_args: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            health: HealthProbeForm::Command { argv: vec!["curl".into(), "-f".into(), "http://x/".into()] },
            domain: Some("api.example.org".into()),
            target: Some("runtime".into()),
            no_cache: true,
            env: vec![
                EnvVar { name: "PLAIN".into(), value: Some("v".into()), secret: false },
                EnvVar { name: "TOKEN".into(), value: None, secret: true },
            ],
            ..ServiceSettings::defaults()
        }
    }

    #[test]
    fn round_trip_keeps_every_setting() {
        let s = sample();
        let values = FormValues::from_settings(&s);
        assert_eq!(values.env[1].value, "");
        assert!(values.env[1].saved_secret);
        assert_eq!(values.to_settings(), Ok(s));
    }

    #[test]
    fn a_worker_sends_no_port_domain_or_git_and_keeps_its_lists() {
        let mut values = FormValues::from_settings(&sample());
        values.kind = "worker".into();
        values.image_from = "web".into();
        values.git_url = "https://example.org/ignored.git".into();
        values.domain = "ignored.example.org".into();
        values.health_kind = "http".into();
        values.command = "celery\nworker".into();
        values.volumes = "cache:/var/cache".into();
        values.ports = "8005:8000\n53:53/udp".into();
        values.deploy_after = "db, cache".into();
        let s = values.to_settings().expect("well-formed");
        assert_eq!(
            (s.kind, s.port, s.domain.as_deref(), s.git_url.as_str()),
            (ServiceKindForm::Worker, None, None, "")
        );
        assert_eq!(s.health, HealthProbeForm::None {}, "no port: no HTTP probe");
        assert_eq!(s.command, ["celery", "worker"]);
        assert_eq!(s.volumes, [VolumeForm { name: "cache".into(), path: "/var/cache".into() }]);
        assert_eq!(s.ports[1], PortForm { host: 53, container: 53, protocol: "udp".into() });
        assert_eq!(s.deploy_after, ["db", "cache"]);
        assert_eq!(FormValues::from_settings(&s).to_settings(), Ok(s));
        values.ports = "8005".into();
        assert!(values.to_settings().is_err(), "a port line without ':' is refused");
    }

    #[test]
    fn secrets_keep_or_replace_their_value() {
        let mut values = FormValues::from_settings(&sample());
        values.env[1].value = "new".into();
        values.env.push(EnvValues {
            name: String::new(),
            value: String::new(),
            secret: false,
            saved_secret: false,
        });
        let env = values.to_settings().map(|s| s.env).unwrap_or_default();
        assert_eq!(env.len(), 2);
        assert_eq!(env[1].value.as_deref(), Some("new"));
    }

    #[test]
    fn malformed_numbers_and_args_name_their_field() {
        let mut values = FormValues::from_settings(&ServiceSettings::defaults());
        values.port = "80a".into();
        values.memory_mb = "99999999999999999999".into();
        values.drain_secs = "4294967296".into();
        values.build_args = "OK=1\nnot an arg".into();
        let fields: Vec<String> =
            values.to_settings().err().unwrap_or_default().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["port", "memory_mb", "drain_secs", "build_args"]);
    }

    #[test]
    fn empty_domain_is_none_and_http_probe_is_trimmed() {
        let mut values = FormValues::from_settings(&ServiceSettings::defaults());
        values.domain = "  ".into();
        values.health_path = " /health ".into();
        let s = values.to_settings().ok();
        assert_eq!(s.as_ref().and_then(|s| s.domain.clone()), None);
        assert_eq!(s.map(|s| s.health), Some(HealthProbeForm::Http { path: "/health".into() }));
    }

    #[test]
    fn aliases_map_engine_names_to_inputs() {
        assert!(aliases("name").contains(&"service"));
        assert!(is_known("memory_bytes"));
        assert!(!is_known("something_else"));
    }
}
