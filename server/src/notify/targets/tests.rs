use super::*;

#[test]
fn urls_are_http_or_https_with_a_host() {
    for good in ["https://hooks.slack.com/services/T0/B0/x", "http://127.0.0.1:9000/hook?a=1", " https://h/ "]
    {
        assert!(valid_url(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://host/x",
        "https://",
        "https://host/a b",
        "https://host/\u{7}",
        "https://host/a\nb",
        "//host/x",
        "host/x",
        "data:text/plain,hi",
        "https://hooks.example*/x",
        "https://a..b/x",
    ] {
        let e = valid_url(bad).expect_err(bad);
        assert!(matches!(e, EngineError::Invalid { field: "url", .. }), "{bad}: {e}");
        if bad.len() > 3 {
            assert!(!e.to_string().contains(bad.trim()), "the error repeats the URL: {e}");
        }
    }
    let long = format!("https://host/{}", "a".repeat(MAX_URL_BYTES));
    assert!(valid_url(&long).is_err());
}

#[test]
fn masks_keep_scheme_host_and_port_only() {
    assert_eq!(mask_url("https://hooks.slack.com/services/T0/B0/secret"), "https://hooks.slack.com/…");
    assert_eq!(mask_url("http://user:pw@127.0.0.1:9000/x?token=1"), "http://127.0.0.1:9000/…");
}

#[test]
fn events_are_validated_deduplicated_and_ordered() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let got = valid_events(&names(&["deploy.failed", "build.succeeded", "deploy.failed"])).expect("valid");
    assert_eq!(got, [EventKind::BuildSucceeded, EventKind::DeployFailed]);
    assert!(valid_events(&names(&["build.started"])).is_err());
    assert!(valid_events(&[]).is_err());
    assert_eq!(
        split_events("build.failed,nonsense,deploy.rolled_back"),
        [EventKind::BuildFailed, EventKind::DeployRolledBack]
    );
}
