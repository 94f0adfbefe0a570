//! A deployment container's own log (viewer): the last lines, then new ones
//! as the container writes them, secrets redacted as in build logs. A
//! followed log ends when the container stops or is replaced, and says why.

use app::wire::{Caller, Role};
use futures::{Stream, StreamExt};

use crate::{
    access::require,
    deploys::{Deployment, DeploymentStatus},
    docker::runtime::LogQuery,
    engine::{Engine, EngineError},
    logs::Redactor,
    projects::ProjectStore,
    service_env,
};

/// Default and largest `tail`.
pub const DEFAULT_TAIL: u32 = 200;
pub const MAX_TAIL: u32 = 10_000;
/// The oldest `since` accepted (the engine keeps no more than that anyway
/// for most drivers, and a bound keeps the arithmetic sane).
const MAX_SINCE_DAYS: i64 = 366;

/// What to read (every field from a query string: checked here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRequest {
    pub service_id: i64,
    /// A deployment of the service whose container still exists; default
    /// the live one.
    pub deployment_id: Option<i64>,
    pub tail: Option<u32>,
    /// RFC 3339 time, or an age: `30s`, `15m`, `2h`, `1d`.
    pub since: Option<String>,
    pub follow: bool,
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    Line {
        stream: &'static str,
        ts: String,
        text: String,
    },
    /// The last event: why the log ended.
    End {
        reason: String,
    },
}

/// `since` as Unix seconds.
pub fn parse_since(raw: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, EngineError> {
    let invalid = || EngineError::Invalid {
        field: "since",
        message: "give an RFC 3339 time (2026-12-05T10:00:00Z) or an age such as 30s, 15m, 2h or 1d, \
                  at most 366 days"
            .into(),
    };
    let raw = raw.trim();
    let oldest = now.timestamp() - MAX_SINCE_DAYS * 86_400;
    let at = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        t.timestamp()
    } else {
        let split = raw.len().checked_sub(1).filter(|_| raw.is_ascii()).ok_or_else(invalid)?;
        let (digits, unit) = raw.split_at(split);
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let n: i64 = digits.parse().map_err(|_| invalid())?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(invalid()),
        };
        now.timestamp() - secs
    };
    if at < oldest || at > now.timestamp() + 60 {
        return Err(invalid());
    }
    Ok(at)
}

impl Engine {
    /// The container log of the service's live deployment (or of the one
    /// asked for), as a stream that ends with [`LogEvent::End`].
    pub async fn runtime_log(
        &self,
        caller: &Caller,
        req: LogRequest,
    ) -> Result<impl Stream<Item = LogEvent> + Send + 'static, EngineError> {
        require(caller, Role::Viewer)?;
        let tail = req.tail.unwrap_or(DEFAULT_TAIL);
        if tail > MAX_TAIL {
            return Err(EngineError::Invalid { field: "tail", message: format!("at most {MAX_TAIL} lines") });
        }
        let since = req.since.as_deref().map(|s| parse_since(s, chrono::Utc::now())).transpose()?;
        let service = ProjectStore::new(self.db.clone()).get_service(req.service_id).await?;
        let dep = match req.deployment_id {
            Some(id) => {
                let dep = self.deployment(id).await?;
                if dep.service_id != service.id {
                    return Err(EngineError::NotFound("deployment"));
                }
                dep
            }
            None => self
                .live_of(service.id)
                .await?
                .ok_or_else(|| EngineError::Conflict("the service has no live deployment".into()))?,
        };
        let container = match &dep.container_id {
            Some(c) if self.docker.container_state(c).await.map_err(anyhow::Error::from)?.is_some() => {
                c.clone()
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "the container of deployment #{} no longer exists",
                    dep.id
                )))
            }
        };
        let redactor = Redactor::new(service_env::secret_values(&self.secrets, &dep.config.env));
        let query = LogQuery { tail: Some(tail), since, follow: req.follow };
        let lines = self.docker.container_log(&container, query).map_err(anyhow::Error::from)?;
        tracing::debug!(service_id = service.id, deployment_id = dep.id, follow = req.follow, "runtime log");
        let engine = self.clone();
        let follow = req.follow;
        let lines = lines.map(move |line| match line {
            Ok(line) => LogEvent::Line {
                stream: line.stream,
                ts: line.ts,
                text: redactor.apply(&line.text).into_owned(),
            },
            Err(e) => LogEvent::End { reason: format!("reading the log failed: {e}") },
        });
        let end = futures::stream::once(async move {
            let reason =
                if follow { engine.why_ended(&dep, &container).await } else { "end of the log".to_string() };
            LogEvent::End { reason }
        });
        // A read error ends the stream with its own reason, before `end`.
        Ok(lines.chain(end).scan(false, |ended, event| {
            if *ended {
                return futures::future::ready(None);
            }
            *ended = matches!(event, LogEvent::End { .. });
            futures::future::ready(Some(event))
        }))
    }

    /// Why a followed container log ended.
    async fn why_ended(&self, dep: &Deployment, container: &str) -> String {
        let now = match self.deployment(dep.id).await {
            Ok(now) => now,
            Err(_) => return "the deployment is gone".into(),
        };
        if now.status != DeploymentStatus::Live {
            return match self.live_of(dep.service_id).await.ok().flatten() {
                Some(live) => format!("the container was replaced by deployment #{}", live.id),
                None => format!("the deployment is no longer live ({})", now.status),
            };
        }
        if now.container_id.as_deref() != Some(container) {
            return "the container was replaced by a restart".into();
        }
        if now.stopped_at.is_some() {
            return "the service was stopped".into();
        }
        match self.docker.container_state(container).await {
            Ok(Some(state)) if !state.running => match state.exit_code {
                Some(code) => format!("the container exited with code {code}"),
                None => "the container stopped".into(),
            },
            Ok(None) => "the container was removed".into(),
            _ => "the log ended".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_and_ages_and_refuses_the_rest() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z").expect("time").to_utc();
        let t = now.timestamp();
        assert_eq!(parse_since("30s", now).ok(), Some(t - 30));
        assert_eq!(parse_since("15m", now).ok(), Some(t - 900));
        assert_eq!(parse_since("2h", now).ok(), Some(t - 7200));
        assert_eq!(parse_since("1d", now).ok(), Some(t - 86_400));
        assert_eq!(parse_since("2026-12-05T11:00:00Z", now).ok(), Some(t - 3600));
        for bad in [
            "",
            "m",
            "-5m",
            "5",
            "5y",
            "999999999999d",
            "1e3s",
            "5 m",
            "15m; rm -rf /",
            "é",
            "3000d",
            "2100-01-01T00:00:00Z",
        ] {
            match parse_since(bad, now) {
                Err(EngineError::Invalid { field: "since", .. }) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
