//! `slipway admin create` as a user runs it: the real binary, the password
//! on stdin, exit code 2 and a clear message for bad input.

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use server::{auth::UserStore, testkit::TestDataDir};

const PW: &str = "correct horse battery";

fn admin_create(dir: &TestDataDir, args: &[&str], stdin: &str) -> anyhow::Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["admin", "create"])
        .args(args)
        .env("SLIPWAY_DATA_DIR", dir.path())
        .env("SLIPWAY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        // The command may exit before reading (bad arguments): ignore EPIPE.
        let _ = input.write_all(stdin.as_bytes());
    }
    Ok(child.wait_with_output()?)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn creates_an_admin_from_a_piped_password() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;

    let out =
        admin_create(&dir, &["--name", "root", "--role", "admin", "--password-stdin"], &format!("{PW}\n"))?;

    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user root"));
    let users = UserStore::new(dir.open_db().await?);
    let root = users.verify_login("root", PW).await?;
    assert_eq!(root.role, app::wire::Role::Admin);
    assert!(users.verify_login("root", &format!("{PW}\n")).await.is_err(), "the newline is not part of it");
    Ok(())
}

#[tokio::test]
async fn bad_input_exits_2_with_a_message() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let line = format!("{PW}\n");
    let cases: [(&[&str], &str, &str); 6] = [
        (&["--name", "root"], "short\n", "at least 12 characters"),
        (&["--name", "root"], "", "no password on stdin"),
        (&["--name", "Root Admin"], &line, "name: may only contain"),
        (&["--name", "root", "--role", "owner"], &line, "role: must be admin, deployer or viewer"),
        (&["--name", "root", "--password", PW], &line, "unexpected argument"),
        (&["--name", "root"], &format!("{}\n", "x".repeat(1025)), "at most 1024 bytes"),
    ];
    for (args, stdin, message) in cases {
        let out = admin_create(&dir, args, stdin)?;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }

    assert!(admin_create(&dir, &["--name", "root"], &line)?.status.success());
    let again = admin_create(&dir, &["--name", "root"], &line)?;
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    Ok(())
}
