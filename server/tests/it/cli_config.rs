//! The real `slipway` binary: invalid configuration (dashboard address, log
//! filter, public URL) stops startup naming the setting; `migrate` creates
//! and migrates the database.

use std::process::Command;

use server::testkit::TestDataDir;

fn slipway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
}

#[test]
fn invalid_dashboard_addr_exits_non_zero_naming_the_setting() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let out = slipway()
        .arg("serve")
        .env("SLIPWAY_DATA_DIR", dir.path())
        .env("SLIPWAY_DASHBOARD_ADDR", "nonsense")
        .output()?;
    assert!(!out.status.success(), "must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SLIPWAY_DASHBOARD_ADDR"), "stderr: {stderr}");
    assert!(!dir.path().join("slipway.db").exists(), "nothing is written before config is valid");
    Ok(())
}

#[test]
fn invalid_log_filter_exits_non_zero_naming_the_setting() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let out =
        slipway().args(["serve", "--log-level", "info,=["]).env("SLIPWAY_DATA_DIR", dir.path()).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLIPWAY_LOG"));
    Ok(())
}

#[test]
fn invalid_allow_local_repos_exits_non_zero_naming_the_setting() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let by_env = slipway()
        .arg("serve")
        .env("SLIPWAY_DATA_DIR", dir.path())
        .env("SLIPWAY_ALLOW_LOCAL_REPOS", "sure")
        .output()?;
    let by_flag = slipway()
        .args(["serve", "--allow-local-repos=maybe"])
        .env("SLIPWAY_DATA_DIR", dir.path())
        .output()?;
    for out in [by_env, by_flag] {
        assert!(!out.status.success(), "must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("SLIPWAY_ALLOW_LOCAL_REPOS"), "stderr: {stderr}");
    }
    assert!(!dir.path().join("slipway.db").exists(), "nothing is written before config is valid");
    Ok(())
}

#[test]
fn invalid_public_url_exits_non_zero_naming_the_setting() -> anyhow::Result<()> {
    for bad in ["apps.example.com:8080", "ftp://apps.example.com", "http://apps.example.com/x?y=1"] {
        let dir = TestDataDir::new()?;
        let out = slipway()
            .arg("serve")
            .env("SLIPWAY_DATA_DIR", dir.path())
            .env("SLIPWAY_PUBLIC_URL", bad)
            .output()?;
        assert!(!out.status.success(), "{bad}: must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("SLIPWAY_PUBLIC_URL"), "{bad}: stderr: {stderr}");
        assert!(!dir.path().join("slipway.db").exists(), "nothing is written before config is valid");
    }
    let dir = TestDataDir::new()?;
    let out = slipway()
        .args(["serve", "--public-url", "https://user:hunter2@apps.example.com"])
        .env("SLIPWAY_DATA_DIR", dir.path())
        .output()?;
    assert!(!out.status.success(), "a URL with a password must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SLIPWAY_PUBLIC_URL") && !stderr.contains("hunter2"), "stderr: {stderr}");
    Ok(())
}

#[test]
fn migrate_creates_the_database_and_exits() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let data = dir.path().join("nested/data");
    let out = slipway().arg("migrate").env("SLIPWAY_DATA_DIR", &data).output()?;
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("slipway.db").is_file());
    Ok(())
}
