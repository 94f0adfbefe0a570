//! Which builder a build uses: BuildKit unless the engine cannot (or is
//! configured not to), then the classic builder, said in the log.

use super::engine_http::Ping;

/// The oldest Engine API with BuildKit builds (`version=2`, Docker 18.09).
const BUILDKIT_MIN_API: (u32, u32) = (1, 39);

/// What the caller asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BuilderPreference {
    /// BuildKit when the engine has it, else the classic builder.
    #[default]
    Auto,
    /// The classic builder (tests of that path).
    Classic,
}

/// The builder chosen for one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    /// BuildKit, through `/v<api>/build`.
    BuildKit { api_version: String },
    /// The classic builder, with the reason shown in the log (none when asked
    /// for).
    Classic { reason: Option<String> },
}

/// The choice from the engine's ping (`Err`: the ping failed or the engine
/// address is one the BuildKit client does not speak).
pub fn choose(preference: BuilderPreference, ping: Result<&Ping, &str>) -> Builder {
    if preference == BuilderPreference::Classic {
        return Builder::Classic { reason: None };
    }
    let ping = match ping {
        Ok(ping) => ping,
        Err(why) => return Builder::Classic { reason: Some(format!("BuildKit is not reachable: {why}")) },
    };
    if ping.os_type.as_deref().is_some_and(|os| os.eq_ignore_ascii_case("windows")) {
        return Builder::Classic { reason: Some("the engine runs Windows containers".into()) };
    }
    if ping.builder_version.as_deref() == Some("1") {
        return Builder::Classic { reason: Some("the engine's builder is set to the classic one".into()) };
    }
    let api_version = ping.api_version.clone().unwrap_or_default();
    match parse_api(&api_version) {
        Some(v) if v >= BUILDKIT_MIN_API => Builder::BuildKit { api_version },
        Some(_) => Builder::Classic {
            reason: Some(format!("the engine's API {api_version} is older than BuildKit builds (1.39)")),
        },
        None => {
            Builder::Classic { reason: Some(format!("the engine's API version {api_version:?} is unknown")) }
        }
    }
}

fn parse_api(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether the engine's refusal of a `version=2` build means it has no
/// BuildKit (then the classic builder is used), not a problem of the build.
pub fn refused_buildkit(status: u16, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    (400..500).contains(&status)
        && (message.contains("buildkit not supported")
            || message.contains("unsupported builder version")
            || message.contains("buildkit is not supported"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(api: &str, builder: Option<&str>, os: &str) -> Ping {
        Ping {
            api_version: Some(api.into()),
            builder_version: builder.map(str::to_string),
            os_type: Some(os.into()),
        }
    }

    #[test]
    fn buildkit_is_chosen_when_the_engine_has_it() {
        let chosen = choose(BuilderPreference::Auto, Ok(&ping("1.41", None, "linux")));
        assert_eq!(chosen, Builder::BuildKit { api_version: "1.41".into() });
        let chosen = choose(BuilderPreference::Auto, Ok(&ping("1.47", Some("2"), "linux")));
        assert_eq!(chosen, Builder::BuildKit { api_version: "1.47".into() });
    }

    #[test]
    fn the_classic_builder_is_chosen_with_a_reason_otherwise() {
        let reason = |b: Builder| match b {
            Builder::Classic { reason } => reason,
            other => panic!("expected classic, got {other:?}"),
        };
        assert!(reason(choose(BuilderPreference::Auto, Ok(&ping("1.38", None, "linux"))))
            .is_some_and(|r| r.contains("1.38")));
        assert!(reason(choose(BuilderPreference::Auto, Ok(&ping("1.41", Some("1"), "linux"))))
            .is_some_and(|r| r.contains("classic")));
        assert!(reason(choose(BuilderPreference::Auto, Ok(&ping("1.41", None, "windows"))))
            .is_some_and(|r| r.contains("Windows")));
        assert!(reason(choose(BuilderPreference::Auto, Ok(&ping("", None, "linux")))).is_some());
        assert!(reason(choose(BuilderPreference::Auto, Err("ssh engine address")))
            .is_some_and(|r| r.contains("ssh")));
        assert_eq!(reason(choose(BuilderPreference::Classic, Ok(&ping("1.41", Some("2"), "linux")))), None);
    }

    #[test]
    fn only_a_refusal_of_buildkit_itself_falls_back() {
        assert!(refused_buildkit(400, "buildkit not supported by daemon"));
        assert!(refused_buildkit(400, "unsupported builder version 2"));
        assert!(!refused_buildkit(500, "buildkit not supported by daemon"));
        assert!(!refused_buildkit(400, "dockerfile parse error line 2: unknown instruction: RUNN"));
        assert!(!refused_buildkit(404, "no such image"));
    }
}
