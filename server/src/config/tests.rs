use super::*;

fn args(addr: &str, log: &str) -> ServeArgs {
    ServeArgs {
        data_dir: "./data".into(),
        dashboard_addr: addr.into(),
        log_level: log.into(),
        site_root: "target/site".into(),
        edge_addr: "127.0.0.1:8080".into(),
        workers: "2".into(),
        edge_workers: "auto".into(),
        edge_tls_addr: None,
        edge_cert_dir: None,
        edge_acme_webroot: None,
        secret_key: None,
        metrics_token: None,
        allow_local_repos: "false".into(),
        public_url: None,
        build_cache_budget: "10GiB".into(),
    }
}

#[test]
fn public_url_is_an_http_origin() {
    let with = |url: &str| {
        Config::from_args(ServeArgs { public_url: Some(url.into()), ..args("127.0.0.1:1", "info") })
            .map(|c| c.public_url)
    };
    assert_eq!(with(""), Ok(None));
    let ok = |scheme: &str, host: &str, port| {
        Ok(Some(PublicUrl { scheme: scheme.into(), host: host.into(), port }))
    };
    assert_eq!(with(" http://apps.example.com:8080 "), ok("http", "apps.example.com", 8080));
    assert_eq!(with("https://apps.example.com/"), ok("https", "apps.example.com", 443));
    assert_eq!(with("http://10.0.0.5"), ok("http", "10.0.0.5", 80));
    for bad in [
        "apps.example.com:8080",
        "ftp://apps.example.com",
        "http://apps.example.com/path",
        "http://apps.example.com/?q=1",
        "http://apps.example.com/#top",
        "http://user:secret@apps.example.com",
        "http://",
    ] {
        let e = with(bad).expect_err(bad);
        assert!(e.to_string().contains("SLIPWAY_PUBLIC_URL"), "{e}");
    }
    let e = with("http://user:hunter2@apps.example.com").expect_err("credentials");
    assert!(!e.to_string().contains("hunter2"), "the error repeats a password: {e}");
}

#[test]
fn defaults_are_valid() {
    let c = Config::from_args(args("127.0.0.1:3000", "info")).expect("valid");
    assert_eq!(c.dashboard_addr, "127.0.0.1:3000".parse().expect("addr"));
}

#[test]
fn bad_address_names_the_setting() {
    let e = Config::from_args(args("nonsense", "info")).expect_err("must fail");
    assert!(e.to_string().contains("SLIPWAY_DASHBOARD_ADDR"), "{e}");
}

#[test]
fn workers_must_be_a_small_positive_number() {
    for bad in ["0", "-1", "many", "65"] {
        let e = Config::from_args(ServeArgs { workers: bad.into(), ..args("127.0.0.1:1", "info") })
            .expect_err(bad);
        assert!(e.to_string().contains("SLIPWAY_WORKERS"), "{e}");
    }
    let c = Config::from_args(ServeArgs { workers: " 4 ".into(), ..args("127.0.0.1:1", "info") });
    assert_eq!(c.map(|c| c.workers), Ok(4));
    for bad in ["0", "17", "two"] {
        let e = Config::from_args(ServeArgs { edge_workers: bad.into(), ..args("127.0.0.1:1", "info") })
            .expect_err(bad);
        assert!(e.to_string().contains("SLIPWAY_EDGE_WORKERS"), "{e}");
    }
    let c = Config::from_args(ServeArgs { edge_workers: "1".into(), ..args("127.0.0.1:1", "info") });
    assert_eq!(c.map(|c| c.edge_workers), Ok(1));
    let auto = Config::from_args(args("127.0.0.1:1", "info")).map(|c| c.edge_workers);
    assert_eq!(auto, Ok(crate::edge::runtime::default_workers()));
}

#[test]
fn metrics_token_is_optional_long_and_printable() {
    let with = |token: &str| {
        Config::from_args(ServeArgs { metrics_token: Some(token.into()), ..args("127.0.0.1:1", "info") })
    };
    assert_eq!(with("").map(|c| c.metrics_token), Ok(None));
    assert_eq!(with(" 0123456789abcdef ").map(|c| c.metrics_token), Ok(Some("0123456789abcdef".into())));
    for bad in ["short", "0123456789 abcdef", "0123456789abcdé€", &"x".repeat(257)] {
        let e = with(bad).expect_err(bad);
        assert!(e.to_string().contains("SLIPWAY_METRICS_TOKEN"), "{e}");
        assert!(!e.to_string().contains(bad), "the error repeats the token: {e}");
    }
}

#[test]
fn local_repos_are_off_unless_allowed() {
    let with = |value: &str| {
        Config::from_args(ServeArgs { allow_local_repos: value.into(), ..args("127.0.0.1:1", "info") })
            .map(|c| c.allow_local_repos)
    };
    assert_eq!(with("false"), Ok(false));
    assert_eq!(with(""), Ok(false));
    for on in ["true", " TRUE ", "1", "yes", "on"] {
        assert_eq!(with(on), Ok(true), "{on}");
    }
    for off in ["False", "0", "no", "off"] {
        assert_eq!(with(off), Ok(false), "{off}");
    }
    for bad in ["treu", "2", "enabled"] {
        let e = with(bad).expect_err(bad);
        assert!(e.to_string().contains("SLIPWAY_ALLOW_LOCAL_REPOS"), "{e}");
    }
}

#[test]
fn build_cache_budget_is_a_size() {
    let with = |value: &str| {
        Config::from_args(ServeArgs { build_cache_budget: value.into(), ..args("127.0.0.1:1", "info") })
            .map(|c| c.build_cache_budget)
    };
    assert_eq!(with("10GiB"), Ok(10 << 30));
    assert_eq!(with(" 500MB "), Ok(500_000_000));
    assert_eq!(with("2g"), Ok(2_000_000_000));
    assert_eq!(with("1.5KiB"), Ok(1536));
    assert_eq!(with("0"), Ok(0));
    assert_eq!(with("4096"), Ok(4096));
    for bad in ["", "ten", "10 parsecs", "-1G", "1e3", "2PiB", "10GiBs"] {
        let e = with(bad).expect_err(bad);
        assert!(e.to_string().contains("SLIPWAY_BUILD_CACHE_BUDGET"), "{e}");
    }
}

#[test]
fn bad_log_filter_names_the_setting() {
    let e = Config::from_args(args("127.0.0.1:1", "info,=[")).expect_err("must fail");
    assert!(e.to_string().contains("SLIPWAY_LOG"), "{e}");
}

#[test]
fn the_tls_listener_needs_its_own_address_and_an_existing_cert_dir() {
    let with = |tls: Option<&str>, dir: Option<&str>| {
        Config::from_args(ServeArgs {
            edge_tls_addr: tls.map(str::to_string),
            edge_cert_dir: dir.map(PathBuf::from),
            ..args("127.0.0.1:3000", "info")
        })
    };
    let named = |r: Result<Config, ConfigError>, setting: &str| {
        let e = r.expect_err(setting).to_string();
        assert!(e.contains(setting), "{e}");
    };
    named(with(Some("443"), None), "SLIPWAY_EDGE_TLS_ADDR");
    named(with(Some("127.0.0.1:8080"), None), "SLIPWAY_EDGE_TLS_ADDR");
    named(with(Some("127.0.0.1:3000"), None), "SLIPWAY_EDGE_TLS_ADDR");
    named(with(None, Some("/")), "SLIPWAY_EDGE_CERT_DIR");
    named(with(Some("127.0.0.1:8443"), Some("/no/such/dir")), "SLIPWAY_EDGE_CERT_DIR");
    let c = with(Some(" 127.0.0.1:8443 "), Some("/")).expect("valid");
    assert_eq!(c.edge_tls_addr, Some("127.0.0.1:8443".parse().expect("addr")));
    assert_eq!(c.edge_cert_dir, Some(PathBuf::from("/")));
    assert_eq!(with(Some(""), None).expect("empty is off").edge_tls_addr, None);
    let webroot = |dir: &str| {
        Config::from_args(ServeArgs { edge_acme_webroot: Some(dir.into()), ..args("127.0.0.1:3000", "info") })
    };
    named(webroot("/no/such/webroot"), "SLIPWAY_EDGE_ACME_WEBROOT");
    assert_eq!(webroot("/").expect("valid").edge_acme_webroot, Some(PathBuf::from("/")));
}
