//! The project hook (issue 18): one signed push to
//! `/hooks/{forge}/projects/{id}` builds every service of the project whose
//! repository and branch match, from one checkout, with one image build for
//! the services whose build inputs are identical; "Build all" shares the
//! same way. Real router, SQLite, git repository and Docker Engine.

use std::time::Duration;

use anyhow::Context;
use app::wire::Role;
use http::StatusCode;
use serde_json::json;
use server::{
    builds::Build,
    engine::EngineError,
    jobs::JobStatus,
    projects::{HealthProbe, ProjectStore, ServiceKind, ServiceSpec},
    testkit::{
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo, BASE_IMAGE,
    },
    webhooks::Forge,
};

use super::webhooks::{Delivery, Hooks};

const LIMIT: Duration = Duration::from_secs(180);

fn dockerfile(dir: &str) -> String {
    format!(
        "FROM {BASE_IMAGE}\nCOPY index.html /www/{dir}.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    )
}

/// A service of `repo` building `context`, never deploying on its own.
fn built(name: &str, repo: &str, context: &str) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, repo, 8080);
    spec.context_path = context.into();
    spec.health = quick_http_check("/");
    spec.auto_deploy = false;
    spec
}

/// A GitHub push of `sha` to `branch` naming `repo_url` as the clone URL.
fn push<'a>(project_id: i64, branch: &str, sha: &str, repo_url: &str) -> Delivery<'a> {
    let body = json!({
        "ref": format!("refs/heads/{branch}"), "before": "1".repeat(40), "after": sha,
        "repository": { "full_name": "acme/mono", "clone_url": repo_url, "html_url": "https://example.test/acme/mono" },
    });
    Delivery::new(Forge::Github, 0, "push", body.to_string().into_bytes()).for_project(project_id)
}

async fn log_text(hooks: &Hooks, build_id: i64) -> anyhow::Result<String> {
    let lines = hooks.engine().build_log(&user(Role::Viewer), build_id, 0).await.map_err(anyhow_of)?;
    Ok(lines.into_iter().map(|l| l.text).collect::<Vec<_>>().join("\n"))
}

/// Waits for every build, then checks the group's sharing: one fetch in
/// all their logs, every build on the shared checkout, and `same` (two
/// services of identical inputs) on one image built once.
async fn check_group(hooks: &Hooks, ids: &[i64], same: (i64, i64)) -> anyhow::Result<Vec<Build>> {
    let mut builds = Vec::new();
    for id in ids {
        let build = hooks.t.wait_build(*id, LIMIT).await?;
        assert_eq!(build.status, JobStatus::Succeeded, "build {id}: {:?}", build.error);
        builds.push(build);
    }
    let group = builds[0].push_group.clone().context("a group")?;
    assert!(builds.iter().all(|b| b.push_group.as_deref() == Some(group.as_str())), "{builds:?}");
    let commits: Vec<_> = builds.iter().map(|b| b.commit_sha.clone()).collect();
    assert!(commits.windows(2).all(|w| w[0] == w[1]), "one commit: {commits:?}");
    let mut fetches = 0;
    let mut shared = 0;
    for b in &builds {
        let log = log_text(hooks, b.id).await?;
        fetches += log.matches("Fetching ").count();
        shared += log.matches("Image shared with build #").count();
        assert!(log.contains("Using this push's checkout of"), "build {}: {log}", b.id);
    }
    assert_eq!(fetches, 1, "the repository is fetched once for the whole group");
    assert_eq!(shared, 1, "the second service of identical inputs reuses the first one's image");
    let image =
        |service: i64| builds.iter().find(|b| b.service_id == service).and_then(|b| b.image_id.clone());
    assert_eq!(image(same.0), image(same.1), "identical inputs, one image");
    assert!(image(same.0).is_some());
    // The group's checkout goes once no build of it is left.
    let workspaces = hooks.t.data.path().join("workspaces");
    let prefix = format!("group-{group}-");
    wait_until("the group's checkout to be removed", Duration::from_secs(30), || async {
        let mut left = 0;
        if let Ok(entries) = std::fs::read_dir(&workspaces) {
            left = entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&prefix)).count();
        }
        Ok((left == 0).then_some(()))
    })
    .await?;
    Ok(builds)
}

#[tokio::test]
async fn one_signed_push_to_the_project_hook_builds_each_matching_service_from_one_checkout(
) -> anyhow::Result<()> {
    let hooks = Hooks::new(true).await?;
    let engine = hooks.engine();
    let suffix = unique_suffix();
    let project =
        engine.create_project(&user(Role::Deployer), &format!("mono-{suffix}")).await.map_err(anyhow_of)?;
    let repo = GitRepo::new()?;
    for dir in ["api", "web"] {
        repo.write(&format!("{dir}/index.html"), &format!("{dir} {suffix}"))?;
        repo.write(&format!("{dir}/Dockerfile"), &dockerfile(dir))?;
    }
    let sha = repo.commit("two services")?;
    let url = repo.url();

    let store = ProjectStore::new(engine.db.clone());
    let create = |spec: ServiceSpec| {
        let store = store.clone();
        async move { anyhow::Ok(store.create_service(project.id, &spec).await?) }
    };
    let api = create(built("api", &url, "api")).await?;
    let web = create(built("web", &url, "web")).await?;
    // Same repository, context, Dockerfile, args and target as `web`.
    let admin = create(built("admin", &url, "web")).await?;
    let mut jobs = ServiceSpec::new("jobs", "", 8080);
    jobs.kind = ServiceKind::Worker;
    jobs.port = None;
    jobs.image_from = Some("web".into());
    jobs.health.probe = HealthProbe::None;
    let jobs = create(jobs).await?;
    let mut dev = built("dev-only", &url, "api");
    dev.branch = "dev".into();
    let dev = create(dev).await?;
    let elsewhere = GitRepo::http_service("another repository")?;
    let other = create(built("other-repo", &elsewhere.url(), ".")).await?;

    // The secret is a deployer's to see; a viewer is refused.
    let refused = engine.project_webhook_info(&user(Role::Viewer), project.id).await;
    assert!(matches!(refused, Err(EngineError::Access(_))), "{refused:?}");
    let info = engine.project_webhook_info(&user(Role::Deployer), project.id).await.map_err(anyhow_of)?;
    assert_eq!(info.paths.github, format!("/hooks/github/projects/{}", project.id));
    let secret = info.secret;

    // A wrong signature is refused and builds nothing; an unknown project is 404.
    let d = push(project.id, "main", &sha, &url);
    let forged = hooks.deliver(&d, &"0".repeat(64)).await?;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{forged:?}");
    let unknown = hooks.deliver(&push(i64::MAX, "main", &sha, &url), &secret).await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");

    let reply = hooks.deliver(&d, &secret).await?;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
    assert_eq!(reply.field("status"), "built");
    let ids: Vec<i64> =
        reply.body["build_ids"].as_array().context("build_ids")?.iter().filter_map(|v| v.as_i64()).collect();
    let mut built_services = Vec::new();
    for id in &ids {
        built_services.push(engine.build(*id).await.map_err(anyhow_of)?.service_id);
    }
    built_services.sort_unstable();
    let mut expected = vec![api.id, web.id, admin.id];
    expected.sort_unstable();
    assert_eq!(
        built_services, expected,
        "neither the image_from worker, another branch nor another repository"
    );
    for unbuilt in [&jobs, &dev, &other] {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM builds WHERE service_id = ?")
            .bind(unbuilt.id)
            .fetch_one(&engine.db)
            .await?;
        assert_eq!(n, 0, "{} is not built", unbuilt.spec.name);
    }
    let builds = check_group(&hooks, &ids, (web.id, admin.id)).await?;
    assert!(builds.iter().all(|b| b.commit_sha.as_deref() == Some(sha.as_str())), "the pushed commit");
    let api_image = builds.iter().find(|b| b.service_id == api.id).and_then(|b| b.image_id.clone());
    let web_image = builds.iter().find(|b| b.service_id == web.id).and_then(|b| b.image_id.clone());
    assert_ne!(api_image, web_image, "another context is another image");

    // The same delivery again is a duplicate; a push to a branch no service
    // builds is acknowledged and ignored. Neither builds.
    let again = hooks.deliver(&d, &secret).await?;
    assert_eq!((again.status, again.field("status")), (StatusCode::OK, "duplicate"), "{again:?}");
    let feature = hooks.deliver(&push(project.id, "feature", &sha, &url), &secret).await?;
    assert_eq!((feature.status, feature.field("status")), (StatusCode::OK, "ignored"), "{feature:?}");
    let records: Vec<(Option<i64>, String)> =
        sqlx::query_as("SELECT service_id, status FROM webhook_deliveries WHERE project_id = ? ORDER BY id")
            .bind(project.id)
            .fetch_all(&engine.db)
            .await?;
    let statuses: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(statuses, ["rejected", "built", "duplicate", "ignored"], "{records:?}");
    assert!(records.iter().all(|r| r.0.is_none()), "project deliveries have no service");
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM builds WHERE service_id IN (SELECT id FROM services WHERE project_id = ?)",
    )
    .bind(project.id)
    .fetch_one(&engine.db)
    .await?;
    assert_eq!(total, 3);

    // A rotated secret: the old one stops working at once.
    let rotated =
        engine.rotate_project_webhook_secret(&user(Role::Deployer), project.id).await.map_err(anyhow_of)?;
    assert_ne!(rotated.secret, secret);
    let stale = hooks.deliver(&push(project.id, "main", &sha, &url), &secret).await?;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{stale:?}");

    // "Build all" is one group too: one fetch per repository and branch, one
    // image for web and admin (the other repository and branch build alone).
    let all = engine.build_all(&user(Role::Deployer), project.id).await.map_err(anyhow_of)?;
    assert_eq!(all.len(), 5, "every service that builds its own image");
    let mut main_ids = Vec::new();
    for id in &all {
        let b = engine.build(*id).await.map_err(anyhow_of)?;
        if b.service_id == dev.id {
            // The repository has no branch `dev`: its own fetch fails, alone.
            let done = hooks.t.wait_build(*id, LIMIT).await?;
            assert_eq!(done.status, JobStatus::Failed, "{:?}", done.error);
        } else if b.service_id == other.id {
            let done = hooks.t.wait_build(*id, LIMIT).await?;
            assert_eq!(done.status, JobStatus::Succeeded, "{:?}", done.error);
        } else {
            main_ids.push(*id);
        }
    }
    check_group(&hooks, &main_ids, (web.id, admin.id)).await?;
    Ok(())
}
