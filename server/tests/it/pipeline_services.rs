//! Real service containers (issue 19): a pipeline whose test step talks to
//! a real PostgreSQL 15 and a real Redis 7, started as the run's services
//! from the test kit's Debian image, with health checks. The repository
//! lints (busybox), builds its image (`FROM` the Debian image), tests
//! against both services, scans beside the test (it depends on the build
//! only), deploys, and leaves no container, network or volume behind.

use std::time::{Duration, Instant};

use crate::pipeline_run::{at, run, step, steps};
use server::{
    jobs::JobStatus,
    testkit::{
        debian::PG_BIN, ensure_debian_image, wait::unique_suffix, DockerKit, GitRepo, TestEngine, BASE_IMAGE,
    },
};

/// The first run on a machine makes the Debian image (debootstrap, about
/// a minute, longer on a slow mirror).
const IMAGE_LIMIT: Duration = Duration::from_secs(900);

/// The pipeline file; `@IMAGE@`, `@BUSYBOX@`, `@PG_BIN@`, `@PG_VALUE@` and
/// `@REDIS_VALUE@` are filled in.
const PIPELINE: &str = r#"services:
  db:
    image: @IMAGE@
    command:
      - su
      - postgres
      - -c
      - "@PG_BIN@/initdb -D /tmp/pg -A trust >/dev/null && echo 'host all all all trust' >> /tmp/pg/pg_hba.conf && exec @PG_BIN@/postgres -D /tmp/pg -c 'listen_addresses=*'"
    healthcheck:
      cmd: ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
      interval: 1s
      retries: 30
      start_period: 30s
  cache:
    image: @IMAGE@
    command: ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
    healthcheck:
      cmd: redis-cli -h 127.0.0.1 ping | grep -q PONG
      interval: 1s
      retries: 30
steps:
  - name: lint
    image: @BUSYBOX@
    commands:
      - grep -q '^FROM @IMAGE@$' /workspace/Dockerfile
      - echo lint-ok
  - name: build
    build: {}
    depends_on: [lint]
  - name: test
    from: build
    depends_on: [build]
    commands:
      - psql -h db -U postgres -v ON_ERROR_STOP=1 -c "CREATE TABLE items (v text)"
      - psql -h db -U postgres -v ON_ERROR_STOP=1 -c "INSERT INTO items VALUES ('@PG_VALUE@')"
      - psql -h db -U postgres -v ON_ERROR_STOP=1 -At -c "SELECT 'row:' || v FROM items"
      - redis-cli -h cache SET slipway:key @REDIS_VALUE@
      - redis-cli -h cache GET slipway:key
  - name: scan
    from: build
    depends_on: [build]
    commands:
      - test -f /www/index.html
      - echo scan-ok
  - name: ship
    deploy: true
    depends_on: [test, scan]
"#;

#[tokio::test]
async fn a_test_step_talks_to_real_postgres_and_redis_services_and_the_run_deploys() -> anyhow::Result<()> {
    let kit = DockerKit::new().await?;
    let started = Instant::now();
    let image = tokio::time::timeout(IMAGE_LIMIT, ensure_debian_image(&kit.docker))
        .await
        .map_err(|_| anyhow::anyhow!("the Debian test image was not ready within {IMAGE_LIMIT:?}"))??;
    eprintln!("pipeline_services: {image} ready in {:.1} s", started.elapsed().as_secs_f64());

    let t = TestEngine::start(&kit).await?;
    let suffix = unique_suffix();
    let (pg_value, redis_value) = (format!("pg-{suffix}"), format!("redis-{suffix}"));
    let repo = GitRepo::new()?;
    repo.write("index.html", &format!("services {suffix}"))?;
    repo.write(
        "Dockerfile",
        &format!(
            "FROM {image}\nCOPY index.html /www/index.html\nEXPOSE 8080\n\
             CMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
    )?;
    let file = PIPELINE
        .replace("@IMAGE@", image)
        .replace("@BUSYBOX@", BASE_IMAGE)
        .replace("@PG_BIN@", PG_BIN)
        .replace("@PG_VALUE@", &pg_value)
        .replace("@REDIS_VALUE@", &redis_value);
    repo.write(".slipway.yml", &file)?;
    repo.commit("pipeline with services")?;
    // Unique: deployment containers are named after the service, engine-wide.
    let service = t.service("pipe", &format!("pgredis-{suffix}"), &repo.url()).await?;

    let run_started = Instant::now();
    let (done, log) = run(&t, &service).await?;
    eprintln!("pipeline_services: the run took {:.1} s", run_started.elapsed().as_secs_f64());
    assert_eq!(done.status, JobStatus::Succeeded, "{:?}\n{log}", done.error);
    let rows = steps(&t, done.id).await?;
    for name in ["lint", "build", "test", "scan", "ship"] {
        assert_eq!(step(&rows, name).status, "success", "{name}: {rows:?}\n{log}");
    }
    for name in ["db", "cache"] {
        let row = rows.iter().find(|r| r.kind == "service" && r.name == name);
        let row = row.unwrap_or_else(|| panic!("no service row {name}: {rows:?}"));
        assert!(row.healthy_ms.is_some(), "{name} was never healthy: {rows:?}\n{log}");
        eprintln!("pipeline_services: service {name} healthy after {:?} ms", row.healthy_ms);
    }

    // The values came back from the real services: whole lines of the test
    // step's output (the echoed commands start with `+ `).
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.contains(&"[lint] lint-ok"), "{log}");
    assert!(lines.contains(&format!("[test] row:{pg_value}").as_str()), "PostgreSQL read back:\n{log}");
    assert!(lines.contains(&format!("[test] {redis_value}").as_str()), "Redis read back:\n{log}");
    assert!(lines.contains(&"[scan] scan-ok"), "{log}");

    // The scan depends on the build alone, and ran beside the test.
    let depends: String =
        sqlx::query_scalar("SELECT depends_on FROM build_steps WHERE build_id = ? AND name = 'scan'")
            .bind(done.id)
            .fetch_one(&t.engine.db)
            .await?;
    assert_eq!(serde_json::from_str::<Vec<String>>(&depends)?, ["build"], "{depends}");
    let (build, test, scan) = (step(&rows, "build"), step(&rows, "test"), step(&rows, "scan"));
    assert!(
        at(&scan.started_at) >= at(&build.finished_at),
        "the scan started before the build ended: {rows:?}"
    );
    assert!(at(&scan.started_at) < at(&test.finished_at), "the scan waited for the test step: {rows:?}");

    // The deploy step made this run's image live; the run left nothing.
    let live = t.engine.live_of(service.id).await?.expect("a live deployment");
    assert_eq!(Some(live.image_id.clone()), done.image_id);
    assert_eq!(live.build_id, Some(done.id));
    assert_eq!(kit.run_leftovers(done.id).await?, 0, "the run left containers, networks or volumes");
    Ok(())
}
