//! Service containers: reachable by name on the run network once healthy;
//! an unhealthy or exiting service fails with its last log lines.

use std::time::{Duration, Instant};

use server::docker::pipeline::{HealthCmd, Healthcheck};

use super::{stdout, TestRun};

fn check(cmd: HealthCmd, interval_ms: u64, retries: u32) -> Healthcheck {
    Healthcheck {
        cmd,
        interval: Duration::from_millis(interval_ms),
        retries,
        start_period: Duration::from_secs(0),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn a_service_answers_to_its_name_once_healthy() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let spec = t.service(
        "web",
        &["sh", "-c", "sleep 2; echo hello-from-web > /www/index.html; exec httpd -f -p 8080 -h /www"],
    );
    let id = t.engine.start_service(&t.run, &spec).await?;
    let mut probe =
        check(HealthCmd::Argv(vec!["wget".into(), "-qO-".into(), "http://127.0.0.1:8080/".into()]), 500, 3);
    // Failures in the start period do not count; probes run fast in it.
    probe.start_period = Duration::from_secs(10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let healthy_after = t.engine.wait_service_healthy(&id, Some(&probe), deadline).await?;

    assert!(healthy_after >= Duration::from_secs(2), "{healthy_after:?}");
    assert!(healthy_after < Duration::from_secs(4), "{healthy_after:?}");
    let (outcome, lines) = t.run(&t.step("client", &["wget -qO- http://web:8080/"])).await?;
    assert_eq!(outcome.exit_code, 0, "{lines:?}");
    assert_eq!(stdout(&lines), ["+ wget -qO- http://web:8080/", "hello-from-web"]);

    // A service without a check is healthy once it runs; a shell-line check works too.
    let plain = t.engine.start_service(&t.run, &t.service("plain", &["sleep", "60"])).await?;
    t.engine.wait_service_healthy(&plain, None, deadline).await?;
    let shell = check(HealthCmd::Shell("test -d /www && test \"$(busybox id -u)\" = 0".into()), 500, 3);
    t.engine.wait_service_healthy(&plain, Some(&shell), deadline).await?;
    Ok(())
}

#[tokio::test]
async fn a_service_that_never_gets_healthy_fails_with_its_last_log_lines() -> anyhow::Result<()> {
    let t = TestRun::new().await?;
    let spec = t.service("db", &["sh", "-c", "echo booting; echo cannot-bind-5432 >&2; sleep 60"]);
    let id = t.engine.start_service(&t.run, &spec).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let Err(failure) = t
        .engine
        .wait_service_healthy(&id, Some(&check(HealthCmd::Shell("test -f /ready".into()), 200, 3)), deadline)
        .await
    else {
        anyhow::bail!("an unhealthy service passed");
    };
    assert!(failure.reason.contains("failed 3 times"), "{failure:?}");
    // stdout and stderr are logged apart: their order between them is not kept.
    let mut last = failure.last_log_lines.clone();
    last.sort();
    assert_eq!(last, ["booting", "cannot-bind-5432"], "{failure:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // One that exits fails at once, with its exit code and log.
    let spec = t.service("crash", &["sh", "-c", "echo dying; exit 4"]);
    let id = t.engine.start_service(&t.run, &spec).await?;
    let started = Instant::now();
    let long = check(HealthCmd::Shell("false".into()), 1000, 100);
    let Err(failure) = t.engine.wait_service_healthy(&id, Some(&long), deadline).await else {
        anyhow::bail!("an exited service passed");
    };
    assert_eq!(failure.exit_code, Some(4), "{failure:?}");
    assert_eq!(failure.last_log_lines, ["dying"]);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    Ok(())
}
