//! A push to a project hook, fanned out: which services of the project it
//! builds, and their builds queued as one group (`crate::builds::group`):
//! one checkout of the pushed commit, one image build per set of identical
//! build inputs.
//!
//! A service is built when it builds its own image (not an `image` service,
//! no `image_from`: those are deployed after their source's build), its
//! branch is the pushed branch, and its repository is the pushed one. The
//! repository is compared by [`repo_key`]: host and path, without scheme,
//! user, port, trailing `/` or `.git`, in lower case, so a service saved
//! with the SSH address matches a push whose payload names the HTTPS one.

use crate::{
    builds::{Build, TriggerBuild},
    engine::Engine,
    projects::{ProjectStore, Service},
};

/// The address of a repository as compared (see the module docs); `None`
/// for something that is no repository address.
pub fn repo_key(url: &str) -> Option<String> {
    let url = url.trim();
    let place = if let Some((scheme, rest)) = url.split_once("://") {
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" | "ssh" | "git" | "git+ssh" | "ssh+git" => {
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
                format!("{}/{path}", without_port(host))
            }
            "file" => rest.to_string(),
            _ => return None,
        }
    } else if url.starts_with('/') {
        url.to_string()
    } else {
        // scp-like: `git@host:owner/repo.git`.
        let (user_host, path) = url.split_once(':')?;
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, host)| host);
        format!("{host}/{}", path.trim_start_matches('/'))
    };
    let place = place.trim_end_matches('/');
    let place = place.strip_suffix(".git").unwrap_or(place).trim_end_matches('/');
    (!place.is_empty() && place.contains('/')).then(|| place.to_ascii_lowercase())
}

fn without_port(host: &str) -> &str {
    match host.rfind(':') {
        // `[::1]:22` → `[::1]`; a bare IPv6 literal has no port.
        Some(i) if !host[i..].contains(']') && (!host.contains('[') || host[..i].ends_with(']')) => {
            &host[..i]
        }
        _ => host,
    }
}

/// The services of `project_id` a push of `branch` to one of `urls` builds,
/// by name.
pub async fn matching_services(
    engine: &Engine,
    project_id: i64,
    branch: &str,
    urls: &[String],
) -> anyhow::Result<Vec<Service>> {
    let keys: Vec<String> = urls.iter().filter_map(|u| repo_key(u)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut matched = Vec::new();
    for service in ProjectStore::new(engine.db.clone()).list_services(project_id).await? {
        if !service.spec.builds_own_image() || service.spec.branch != branch {
            continue;
        }
        let url = service.real_git_url(&engine.secrets)?;
        if repo_key(&url).is_some_and(|k| keys.contains(&k))
            && engine.ensure_not_deleting(service.id).await.is_ok()
        {
            matched.push(service);
        }
    }
    Ok(matched)
}

/// Queues one build of `sha` per service, all in `group`. Each build is
/// queued on its own (its row and job in one transaction): the ones queued
/// before a failure stay queued, and the failures are returned by service.
pub async fn queue_builds(
    engine: &Engine,
    actor: &str,
    services: &[Service],
    sha: &str,
    group: &str,
) -> (Vec<(Build, String)>, Vec<(String, String)>) {
    let (mut queued, mut failed) = (Vec::new(), Vec::new());
    for service in services {
        let req = TriggerBuild {
            service_id: service.id,
            git_ref: Some(sha.to_string()),
            trigger: "webhook".into(),
            group: Some(group.to_string()),
            ..TriggerBuild::default()
        };
        match engine.enqueue_build(actor, req).await {
            Ok(build) => queued.push((build, service.spec.name.clone())),
            Err(e) => {
                tracing::error!(service_id = service.id, error = %e, "project hook: cannot queue a build");
                failed.push((service.spec.name.clone(), e.to_string()));
            }
        }
    }
    (queued, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_of_one_repository_address_compare_equal() {
        let key = Some("github.com/acme/shop".to_string());
        for url in [
            "https://github.com/acme/shop.git",
            "https://github.com/Acme/Shop",
            "https://user:token@github.com/acme/shop/",
            "git@github.com:acme/shop.git",
            "ssh://git@github.com:22/acme/shop.git",
            "git://github.com/acme/shop",
        ] {
            assert_eq!(repo_key(url), key, "{url}");
        }
        assert_eq!(repo_key("file:///tmp/r/repo.git"), Some("/tmp/r/repo".into()));
        assert_eq!(repo_key("/tmp/r/repo"), Some("/tmp/r/repo".into()));
        assert_eq!(repo_key("https://[::1]:8443/a/b"), Some("[::1]/a/b".into()));
        assert_ne!(repo_key("https://github.com/acme/shop-api"), key);
        assert_ne!(repo_key("https://gitlab.com/acme/shop"), key);
        for bad in ["", "javascript://x/y", "github.com", "https://github.com/"] {
            assert_eq!(repo_key(bad), None, "{bad:?}");
        }
    }
}
