//! The real `slipway` process end to end: `admin create`, then `serve`
//! (session table created at startup, client addresses known), sign-in over
//! HTTP, whoami with the cookie, and a cross-origin POST refused.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use server::testkit::{ServerProcess, TestDataDir};

const PW: &str = "correct horse battery";

struct Reply {
    status: u16,
    head: String,
    body: String,
}

fn post(addr: SocketAddr, path: &str, extra: &str, body: &str) -> anyhow::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok(Reply { status, head: head.to_string(), body: body.to_string() })
}

fn session_cookie(head: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .find_map(|c| c.strip_prefix("id=")?.split(';').next().map(str::to_owned))
}

#[tokio::test]
async fn a_served_dashboard_signs_in_and_refuses_cross_origin_posts() -> anyhow::Result<()> {
    let dir = TestDataDir::new()?;
    let site = TestDataDir::new()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_slipway"));
    let mut create = Command::new(&bin)
        .args(["admin", "create", "--name", "root", "--password-stdin"])
        .env("SLIPWAY_DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = create.stdin.take() {
        writeln!(stdin, "{PW}")?;
    }
    assert!(create.wait()?.success());
    let (data, site_root) = (dir.path().to_path_buf(), site.path().to_path_buf());
    let server = tokio::task::spawn_blocking(move || ServerProcess::start(&bin, &data, &site_root)).await??;
    let addr = server.addr;

    let (login, cross, me) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let origin = format!("Origin: http://{addr}\r\n");
        let login =
            post(addr, "/rpc/login", &origin, &format!("name=root&password={}", PW.replace(' ', "+")))?;
        let cookie = session_cookie(&login.head).unwrap_or_default();
        let cross = post(
            addr,
            "/rpc/logout",
            &format!("Origin: http://evil.example\r\nCookie: id={cookie}\r\n"),
            "",
        )?;
        let me = post(addr, "/rpc/whoami", &format!("Cookie: id={cookie}\r\n"), "")?;
        Ok((login, cross, me))
    })
    .await??;

    assert_eq!(login.status, 200, "{}\n{}", login.head, server.log());
    assert!(login.head.to_ascii_lowercase().contains("httponly"), "{}", login.head);
    assert_eq!(cross.status, 403, "{}", cross.head);
    assert!(cross.body.contains("cross-origin request refused"), "{}", cross.body);
    assert_eq!(me.status, 200, "{}", me.head);
    assert!(me.body.contains(r#""name":"root""#), "still signed in after the refused logout: {}", me.body);
    assert!(!server.log().contains(PW), "the password never reaches the log");
    Ok(())
}
