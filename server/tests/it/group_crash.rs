//! A "Build all" group (issue 18: one checkout, one image build for
//! identical inputs) against the real `slipway serve`, killed with SIGKILL
//! while the shared image build runs, then started again: every build of
//! the group runs again and succeeds, the two services of identical inputs
//! still end on one image, and neither the group's checkout nor a build
//! workspace nor a container is left.

use std::time::Duration;

use anyhow::{bail, ensure};
use app::wire::Role;
use server::{
    builds::Build,
    jobs::JobStatus,
    projects::{ProjectStore, ServiceSpec},
    testkit::{
        engine::{anyhow_of, quick_http_check, user},
        wait::{unique_suffix, wait_until},
        GitRepo, Installation, BASE_IMAGE,
    },
};

const LIMIT: Duration = Duration::from_secs(240);

fn spec(name: &str, url: &str, context: &str) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, url, 8080);
    spec.context_path = context.into();
    spec.health = quick_http_check("/");
    spec.auto_deploy = false;
    spec
}

#[tokio::test]
async fn a_build_group_killed_mid_build_runs_again_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let inst = &Installation::open(env!("CARGO_BIN_EXE_slipway")).await?;
    let (engine, db) = (&inst.engine, &inst.db);
    let unique = unique_suffix();
    let repo = GitRepo::new()?;
    repo.write("app/Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN sleep 6 && echo group-{unique}\n"))?;
    repo.write("tool/Dockerfile", &format!("FROM {BASE_IMAGE}\nRUN echo tool-{unique}\n"))?;
    repo.commit("two contexts")?;
    let store = ProjectStore::new(db.clone());
    let project = store.create_project(&format!("group-{unique}")).await?;
    let url = repo.url();
    let a = store.create_service(project.id, &spec("a", &url, "app")).await?;
    let b = store.create_service(project.id, &spec("b", &url, "app")).await?;
    store.create_service(project.id, &spec("tool", &url, "tool")).await?;

    let mut server = inst.start_server().await?;
    let ids = engine.build_all(&user(Role::Deployer), project.id).await.map_err(anyhow_of)?;
    ensure!(ids.len() == 3, "{ids:?}");
    let group = engine.build(ids[0]).await.map_err(anyhow_of)?.push_group.unwrap_or_default();
    let workspaces = inst.data_path().join("workspaces");
    let group_dirs = || {
        std::fs::read_dir(&workspaces)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("group-{group}-")))
                    .count()
            })
            .unwrap_or(0)
    };
    // Killed while the shared image build of a and b runs its slow step.
    wait_until("the shared build's slow step", LIMIT, || async {
        for id in [ids[0], ids[1]] {
            let build = engine.build(id).await.map_err(anyhow_of)?;
            if build.status.is_terminal() {
                bail!("build {id} ended before the kill: {} {:?}", build.status, build.error);
            }
            let lines = engine.build_log(&user(Role::Viewer), id, 0).await.map_err(anyhow_of)?;
            if lines.iter().any(|l| l.text.contains("RUN sleep 6")) {
                return Ok(Some(()));
            }
        }
        Ok(None)
    })
    .await
    .map_err(|e| e.context(server.log()))?;
    ensure!(group_dirs() == 1, "the group's checkout exists while it builds");
    server.kill();

    server = inst.start_server().await?;
    let mut done: Vec<Build> = Vec::new();
    for id in &ids {
        let build = wait_until("the group's builds to end", LIMIT, || async move {
            let build = engine.build(*id).await.map_err(anyhow_of)?;
            Ok(build.status.is_terminal().then_some(build))
        })
        .await
        .map_err(|e| e.context(server.log()))?;
        ensure!(build.status == JobStatus::Succeeded, "build {id} after the restart: {:?}", build.error);
        done.push(build);
    }
    let retried: Vec<i64> = done.iter().filter(|x| x.attempt == 2).map(|x| x.service_id).collect();
    ensure!(
        retried.contains(&a.id) || retried.contains(&b.id),
        "the shared build was interrupted and ran again: {done:?}"
    );
    let image = |service: i64| done.iter().find(|x| x.service_id == service).and_then(|x| x.image_id.clone());
    ensure!(image(a.id).is_some() && image(a.id) == image(b.id), "one image for a and b: {done:?}");
    wait_until("the group's checkout and workspaces to go", Duration::from_secs(30), || async {
        let left = std::fs::read_dir(&workspaces).map(|e| e.count()).unwrap_or(0);
        Ok((left == 0).then_some(()))
    })
    .await?;
    let containers = inst.containers(&[]).await?;
    ensure!(containers.is_empty(), "containers left: {containers:?}");
    drop(server);
    Ok(())
}
