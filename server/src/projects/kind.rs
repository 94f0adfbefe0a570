//! Service kinds (issue 18) and the settings that depend on the kind: the
//! image reference, `image_from`, the command, volumes, the port, the
//! probe and the route. [`check_kind`] applies the rules between them.

use serde::{Deserialize, Serialize};

use super::{HealthProbe, ServiceSpec};
use crate::validate::{self, Problems, ValidationError};

/// What a service runs and how it is reached (issue 18).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// An HTTP service: a port, an edge route and a probe.
    #[default]
    Web,
    /// A background process: no port, no route.
    Worker,
    /// An image already in the engine (a database, a cache, a vendor
    /// image): no git and no build. A port gives it a route as for `web`.
    Image,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Web => "web",
            ServiceKind::Worker => "worker",
            ServiceKind::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "web" => ServiceKind::Web,
            "worker" => ServiceKind::Worker,
            "image" => ServiceKind::Image,
            _ => return None,
        })
    }
}

/// A named volume mounted into every deployment of a service; it outlives
/// them all (nothing automatic ever deletes one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// A slug, unique within the service.
    pub name: String,
    /// An absolute path in the container.
    pub path: String,
}

/// A host port published to a container port (non-HTTP protocols).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub host: u32,
    pub container: u32,
    /// `tcp` (default) or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".into()
}

/// Most published ports of one service.
pub const MAX_PORTS: usize = 16;

/// Most volumes one service declares.
pub const MAX_VOLUMES: usize = 16;
/// Default settle time of a worker without a probe.
pub const DEFAULT_SETTLE_SECS: u32 = 5;
pub(super) const SETTLE_RANGE: (u32, u32) = (0, 3600);
/// Most arguments of a command.
pub const MAX_COMMAND_ARGS: usize = 64;
/// Longest volume path in the container.
const MAX_VOLUME_PATH: usize = 256;

/// The kind-dependent settings of a spec, checked and normalized.
pub(super) struct KindParts {
    pub git_url: String,
    pub image: Option<String>,
    pub image_from: Option<String>,
    pub command: Option<Vec<String>>,
    pub volumes: Vec<VolumeSpec>,
    pub port: Option<u32>,
    pub ports: Vec<PortSpec>,
}

impl ServiceSpec {
    /// Whether this service builds its own image from git (not an `image`
    /// service, not one that takes its image from another service).
    pub fn builds_own_image(&self) -> bool {
        self.kind != ServiceKind::Image && self.image_from.is_none()
    }

    /// Whether the edge router has a route to it: a port, and not a worker.
    pub fn routed(&self) -> bool {
        self.kind != ServiceKind::Worker && self.port.is_some()
    }
}

/// Checks the kind's rules, noting each refusal in `p`.
pub(super) fn check_kind(spec: &ServiceSpec, p: &mut Problems) -> Option<KindParts> {
    let kind = spec.kind;
    // Which service `image_from` names (it exists, is not this one, builds
    // its own image) is the store's check: it needs the project.
    let image_from = match spec.image_from.as_deref().filter(|n| !n.is_empty()) {
        None => Some(None),
        Some(_) if kind == ServiceKind::Image => {
            p.add("image_from", "an image service runs its own image reference");
            None
        }
        Some(name) => p.check(validate::slug("image_from", name)).map(Some),
    };
    let image = match (kind, spec.image.as_deref().filter(|i| !i.is_empty())) {
        (ServiceKind::Image, Some(image)) => p.check(validate::image_ref(image)).map(Some),
        (ServiceKind::Image, None) => {
            p.add("image", "an image service needs an image reference");
            None
        }
        (_, None) => Some(None),
        (_, Some(_)) => {
            p.add("image", "only an image service takes an image reference");
            None
        }
    };
    let builds = kind != ServiceKind::Image && matches!(image_from, Some(None));
    let git_url = if builds {
        p.check(validate::git_url(&spec.git_url))
    } else if spec.git_url.is_empty() {
        Some(String::new())
    } else {
        let why = if kind == ServiceKind::Image {
            "an image service has no repository; leave it empty"
        } else {
            "a service that takes its image from another service builds nothing; leave it empty"
        };
        p.add("git_url", why);
        None
    };
    let port = match (kind, spec.port) {
        (ServiceKind::Worker, Some(_)) => {
            p.add("port", "a worker has no port (it gets no route)");
            None
        }
        (ServiceKind::Web, None) => {
            p.add("port", "a web service needs a port");
            None
        }
        (_, Some(port)) => p.check(validate::port(port)).map(|p| Some(u32::from(p))),
        (_, None) => Some(None),
    };
    match (&spec.health.probe, kind) {
        (HealthProbe::None, ServiceKind::Web) => {
            p.add("health", "a web service needs a probe (an HTTP path or a command)")
        }
        (HealthProbe::Http { .. }, _) if spec.port.is_none() || kind == ServiceKind::Worker => {
            p.add("health", "an HTTP probe needs a port; use a command probe or none")
        }
        _ => {}
    }
    if kind == ServiceKind::Worker && spec.domain.as_deref().is_some_and(|d| !d.is_empty()) {
        p.add("domain", "a worker has no route, so no domain");
    }
    let routed = kind != ServiceKind::Worker && spec.port.is_some();
    if spec.https_redirect && !routed {
        p.add("https_redirect", "only a service with a port has a route to redirect");
    }
    if spec.hsts && !routed {
        p.add("hsts", "only a service with a port has a route to send HSTS on");
    }
    let command = match spec.command.as_deref() {
        None | Some([]) => Some(None),
        Some(argv) => p.check(command(argv)).map(Some),
    };
    let volumes = volumes(&spec.volumes, p);
    let ports = ports(&spec.ports, p);
    Some(KindParts {
        git_url: git_url?,
        image: image?,
        image_from: image_from?,
        command: command?,
        volumes: volumes?,
        port: port?,
        ports: ports?,
    })
}

/// Valid ports and protocols; a later entry of the same host port and
/// protocol replaces an earlier one.
fn ports(list: &[PortSpec], p: &mut Problems) -> Option<Vec<PortSpec>> {
    if list.len() > MAX_PORTS {
        p.add("ports", format!("at most {MAX_PORTS} published ports"));
        return None;
    }
    let mut out: Vec<PortSpec> = Vec::with_capacity(list.len());
    for port in list {
        let field = |e: ValidationError| ValidationError::new("ports", e.message);
        let host = p.check(validate::port(port.host).map_err(field))?;
        let container = p.check(validate::port(port.container).map_err(field))?;
        if port.protocol != "tcp" && port.protocol != "udp" {
            p.add("ports", "protocol must be tcp or udp");
            return None;
        }
        out.retain(|o| !(o.host == u32::from(host) && o.protocol == port.protocol));
        out.push(PortSpec {
            host: u32::from(host),
            container: u32::from(container),
            protocol: port.protocol.clone(),
        });
    }
    Some(out)
}

/// An argument vector: 1 to [`MAX_COMMAND_ARGS`] arguments, a program name
/// first, no control characters; it is passed to the engine as is (never
/// to a shell). The same rules as a health command's.
fn command(argv: &[String]) -> Result<Vec<String>, ValidationError> {
    let field = "command";
    if argv.len() > MAX_COMMAND_ARGS {
        return Err(ValidationError::new(field, format!("at most {MAX_COMMAND_ARGS} arguments")));
    }
    if argv[0].is_empty() || argv[0].starts_with('-') {
        return Err(ValidationError::new(field, "must start with a program name"));
    }
    for arg in argv {
        validate::env_value(arg).map_err(|e| ValidationError::new(field, e.message))?;
    }
    Ok(argv.to_vec())
}

/// Names (slugs) and absolute container paths, each at most once.
fn volumes(list: &[VolumeSpec], p: &mut Problems) -> Option<Vec<VolumeSpec>> {
    if list.len() > MAX_VOLUMES {
        p.add("volumes", format!("at most {MAX_VOLUMES} volumes"));
        return None;
    }
    let mut out: Vec<VolumeSpec> = Vec::with_capacity(list.len());
    for v in list {
        let name = p.check(validate::slug("volumes", &v.name))?;
        let path = p.check(volume_path(&v.path))?;
        // A later entry of the same name, or at the same path, replaces an
        // earlier one (as for environment variables).
        out.retain(|o| o.name != name && o.path != path);
        out.push(VolumeSpec { name, path });
    }
    Some(out)
}

/// An absolute path in the container: `/`-separated segments of letters,
/// digits and `-._`, none starting with `.` (so no `.` or `..`), an optional
/// trailing `/` (dropped); never `/` itself, no `:` or `,` (the engine's
/// mount syntax uses them).
fn volume_path(raw: &str) -> Result<String, ValidationError> {
    let field = "volumes";
    if raw.len() > MAX_VOLUME_PATH {
        return Err(ValidationError::new(field, format!("a path must be at most {MAX_VOLUME_PATH} bytes")));
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(ValidationError::new(field, format!("{raw:?}: the container path must be absolute")));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segment_ok = |s: &str| {
        s.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
    };
    if rest.is_empty() || !rest.split('/').all(segment_ok) {
        return Err(ValidationError::new(
            field,
            format!(
                "{raw:?}: an absolute path of segments of letters, digits and - . _, none starting with '.'"
            ),
        ));
    }
    Ok(format!("/{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_are_absolute_and_normalized() {
        assert_eq!(volume_path("/data/").ok().as_deref(), Some("/data"));
        assert_eq!(volume_path("/var/lib/redis.d").ok().as_deref(), Some("/var/lib/redis.d"));
        for good in ["/data/", "/var/lib/redis.d", "/_x/-y"] {
            assert!(volume_path(good).is_ok(), "{good}");
        }
        for bad in ["data", "/", "//var", "/a/../b", "/./a", "/.x", "/a:b", "/a,b", "/a b", "/a//b"] {
            assert!(volume_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_round_trip_as_text() {
        for kind in [ServiceKind::Web, ServiceKind::Worker, ServiceKind::Image] {
            assert_eq!(ServiceKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ServiceKind::parse("cron"), None);
    }
}
