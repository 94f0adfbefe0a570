use super::*;

async fn store() -> anyhow::Result<(tempfile::TempDir, ProjectStore)> {
    let dir = tempfile::tempdir()?;
    let db = crate::db::open(dir.path()).await?;
    Ok((dir, ProjectStore::new(db)))
}

fn spec() -> ServiceSpec {
    ServiceSpec::new("api", "https://github.com/o/r.git", 8080)
}

#[tokio::test]
async fn projects_and_services_round_trip() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let project = store.create_project("shop").await?;
    assert_eq!(store.list_projects().await?, vec![project.clone()]);

    let mut spec = spec();
    spec.context_path = "./services/api/".into();
    spec.build_args.insert("NODE_ENV".into(), "production".into());
    spec.health = HealthCheck {
        probe: HealthProbe::Command { argv: vec!["curl".into(), "-f".into(), "http://localhost/".into()] },
        ..HealthCheck::default()
    };
    let service = store.create_service(project.id, &spec).await?;
    assert_eq!(service.spec.context_path, "services/api", "normalized");
    assert_eq!(service.spec.health, spec.health);
    assert_eq!(service.next_build_number, 1);
    assert_eq!(store.get_service(service.id).await?, service);
    let other = store.create_project("other").await?;
    store.create_service(other.id, &ServiceSpec::new("api", "https://example.com/b.git", 8080)).await?;
    assert_eq!(store.get_service_and_project(service.id).await?, (project.clone(), service.clone()));
    assert!(matches!(
        store.get_service_and_project(service.id + 100).await,
        Err(ProjectError::NotFound { what: "service" })
    ));

    let mut changed = service.spec.clone();
    changed.port = Some(9090);
    changed.auto_deploy = false;
    changed.health.probe = HealthProbe::Http { path: "/healthz".into() };
    let updated = store.update_service(service.id, &changed).await?;
    assert_eq!(updated.spec, changed);
    assert_eq!(store.list_services(project.id).await?, vec![updated]);

    assert!(matches!(store.delete_project(project.id).await, Err(ProjectError::InUse(_))));
    store.delete_service(service.id).await?;
    store.delete_project(project.id).await?;
    assert_eq!(store.list_projects().await?, vec![other]);
    assert!(matches!(store.get_project(project.id).await, Err(ProjectError::NotFound { what: "project" })));
    Ok(())
}

#[tokio::test]
async fn domains_are_normalized_and_unique() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let p = store.create_project("shop").await?;
    let mut first = spec();
    first.domain = Some("Shop.Example.COM.".into());
    let created = store.create_service(p.id, &first).await?;
    assert_eq!(created.spec.domain.as_deref(), Some("shop.example.com"));
    let mut second = spec();
    second.name = "admin".into();
    second.domain = Some("shop.example.com".into());
    let e = store.create_service(p.id, &second).await.expect_err("taken");
    assert!(matches!(e, ProjectError::Conflict { field: "domain", .. }), "{e}");
    second.domain = None;
    assert_eq!(store.create_service(p.id, &second).await?.spec.domain, None);
    Ok(())
}

#[tokio::test]
async fn names_are_unique() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let p = store.create_project("shop").await?;
    let e = store.create_project("shop").await.expect_err("duplicate project");
    assert!(matches!(e, ProjectError::Conflict { field: "project", .. }), "{e}");
    store.create_service(p.id, &spec()).await?;
    let e = store.create_service(p.id, &spec()).await.expect_err("duplicate service");
    assert_eq!(e.field(), Some("service"));
    let e = store.create_service(p.id + 100, &spec()).await.expect_err("missing project");
    assert!(matches!(e, ProjectError::NotFound { what: "project" }));
    Ok(())
}

#[tokio::test]
async fn every_field_is_validated_and_named() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let p = store.create_project("shop").await?;
    assert_eq!(store.create_project("Shop!").await.expect_err("bad name").field(), Some("project"));
    assert_eq!(store.rename_project(p.id, "-x").await.expect_err("bad name").field(), Some("project"));

    type Edit = fn(&mut ServiceSpec);
    let cases: Vec<(Edit, &str)> = vec![
        (|s| s.name = "API".into(), "service"),
        (|s| s.git_url = "ext::sh -c id".into(), "git_url"),
        (|s| s.branch = "main;id".into(), "branch"),
        (|s| s.context_path = "../x".into(), "context_path"),
        (|s| s.dockerfile_path = "/Dockerfile".into(), "dockerfile_path"),
        (|s| _ = s.build_args.insert("A-B".into(), "x".into()), "build_arg"),
        (|s| _ = s.build_args.insert("A".into(), "x\0".into()), "build_args"),
        (|s| s.port = Some(0), "port"),
        (|s| s.health.probe = HealthProbe::Http { path: "healthz".into() }, "health_path"),
        (|s| s.health.probe = HealthProbe::Http { path: "/a b".into() }, "health_path"),
        (|s| s.health.probe = HealthProbe::Command { argv: vec![] }, "health_command"),
        (|s| s.health.probe = HealthProbe::Command { argv: vec!["-x".into()] }, "health_command"),
        (|s| s.health.interval_ms = 0, "health_interval_ms"),
        (|s| s.health.timeout_ms = u32::MAX, "health_timeout_ms"),
        (|s| s.health.retries = 0, "health_retries"),
        (|s| s.health.start_period_ms = u32::MAX, "health_start_period_ms"),
        (|s| s.memory_bytes = 1024, "memory_bytes"),
        (|s| s.cpu_millis = 0, "cpu_millis"),
        (|s| s.build_timeout_secs = 0, "build_timeout_secs"),
        (|s| s.drain_secs = 100_000, "drain_secs"),
        (|s| s.domain = Some("localhost".into()), "domain"),
        (|s| s.domain = Some("a_b.example.com".into()), "domain"),
        (|s| s.domain = Some("-x.example.com".into()), "domain"),
    ];
    for (edit, field) in cases {
        let mut s = spec();
        edit(&mut s);
        let e = store.create_service(p.id, &s).await.expect_err(field);
        assert_eq!(e.field(), Some(field), "{e}");
    }
    assert!(store.list_services(p.id).await?.is_empty(), "nothing stored");
    Ok(())
}

#[test]
fn every_bad_field_is_named_at_once() {
    let mut s = spec();
    s.name = "API".into();
    s.port = Some(0);
    s.health.retries = 0;
    s.memory_bytes = 1024;
    s.domain = Some("localhost".into());
    match s.validate() {
        Err(ProjectError::Fields(list)) => {
            let fields: Vec<&str> = list.iter().map(|e| e.field).collect();
            assert_eq!(fields, ["service", "port", "health_retries", "memory_bytes", "domain"]);
            let memory = list.iter().find(|e| e.field == "memory_bytes").map(|e| e.message.as_str());
            assert_eq!(memory, Some("must be between 6 and 1048576 MB"));
        }
        other => panic!("expected every field refused, got {other:?}"),
    }
    assert_eq!(spec().validate().map(|v| v.port).ok(), Some(spec().port));
}

fn worker(name: &str, from: &str) -> ServiceSpec {
    let mut spec = ServiceSpec::new(name, "", 8080);
    spec.kind = ServiceKind::Worker;
    spec.port = None;
    spec.image_from = Some(from.into());
    spec.command = Some(vec!["celery".into(), "worker".into()]);
    spec.health.probe = HealthProbe::None;
    spec
}

#[tokio::test]
async fn kinds_image_sources_and_volumes_round_trip() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let p = store.create_project("shop").await?;
    let web = store.create_service(p.id, &spec()).await?;
    let mut jobs = worker("jobs", "api");
    jobs.volumes = vec![
        VolumeSpec { name: "cache".into(), path: "/var/cache/".into() },
        VolumeSpec { name: "tmp".into(), path: "/tmp".into() },
        // A later entry of the same name replaces the earlier one.
        VolumeSpec { name: "cache".into(), path: "/cache".into() },
    ];
    let jobs = store.create_service(p.id, &jobs).await?;
    assert_eq!(jobs.image_from_id, Some(web.id));
    assert_eq!(jobs.spec.image_from.as_deref(), Some("api"));
    assert_eq!((jobs.spec.kind, jobs.spec.port), (ServiceKind::Worker, None));
    assert_eq!(
        jobs.spec.volumes,
        vec![
            VolumeSpec { name: "tmp".into(), path: "/tmp".into() },
            VolumeSpec { name: "cache".into(), path: "/cache".into() },
        ]
    );
    assert_eq!(store.get_service(jobs.id).await?, jobs);
    assert_eq!(store.dependents(web.id).await?, vec![jobs.clone()]);

    let mut redis = ServiceSpec::new("redis", "", 6379);
    redis.kind = ServiceKind::Image;
    redis.port = None;
    redis.image = Some("redis:7".into());
    redis.health.probe = HealthProbe::None;
    let redis = store.create_service(p.id, &redis).await?;
    assert_eq!((redis.spec.image.as_deref(), redis.spec.git_url.as_str()), (Some("redis:7"), ""));
    assert!(!redis.spec.routed() && !redis.spec.builds_own_image());
    Ok(())
}

#[tokio::test]
async fn kind_rules_are_refused_with_the_field_named() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let p = store.create_project("shop").await?;
    store.create_service(p.id, &spec()).await?;
    let field = |r: Result<Service>| r.err().and_then(|e| e.field());
    let mut w = worker("w", "api");
    w.port = Some(8080);
    assert_eq!(field(store.create_service(p.id, &w).await), Some("port"));
    let mut web = spec();
    web.name = "web2".into();
    web.port = None;
    assert_eq!(field(store.create_service(p.id, &web).await), Some("port"));
    let mut web = spec();
    web.name = "web3".into();
    web.health.probe = HealthProbe::None;
    assert_eq!(field(store.create_service(p.id, &web).await), Some("health"));
    let mut img = ServiceSpec::new("img", "https://github.com/o/r.git", 80);
    img.kind = ServiceKind::Image;
    let refused = store.create_service(p.id, &img).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("image") && refused.contains("git_url"), "{refused}");
    let mut w = worker("w2", "api");
    w.domain = Some("w.example.org".into());
    assert_eq!(field(store.create_service(p.id, &w).await), Some("domain"));
    let mut w = worker("w3", "api");
    w.command = Some(vec!["-x".into()]);
    assert_eq!(field(store.create_service(p.id, &w).await), Some("command"));
    let mut w = worker("w4", "api");
    w.https_redirect = true;
    assert_eq!(field(store.create_service(p.id, &w).await), Some("https_redirect"));
    let mut w = worker("w5", "api");
    w.hsts = true;
    assert_eq!(field(store.create_service(p.id, &w).await), Some("hsts"));

    // Sources: must exist, not be itself, and build their own image.
    for (name, from) in [("w4", "nope"), ("w5", "w5")] {
        let refused = store.create_service(p.id, &worker(name, from)).await;
        assert!(
            matches!(refused, Err(ProjectError::Conflict { field: "image_from", .. })),
            "{name}: {refused:?}"
        );
    }
    let jobs = store.create_service(p.id, &worker("jobs", "api")).await?;
    let chained = store.create_service(p.id, &worker("chain", "jobs")).await;
    assert!(matches!(chained, Err(ProjectError::Conflict { field: "image_from", .. })), "{chained:?}");
    // The source keeps building while something takes its image.
    let api = store.list_services(p.id).await?.into_iter().find(|s| s.spec.name == "api").expect("api");
    let mut now_image = api.spec.clone();
    now_image.kind = ServiceKind::Image;
    now_image.git_url = String::new();
    now_image.image = Some("nginx:1".into());
    let refused = store.update_service(api.id, &now_image).await;
    assert!(matches!(refused, Err(ProjectError::Conflict { field: "kind", .. })), "{refused:?}");
    assert_eq!(store.list_services(p.id).await?.len(), 2, "nothing refused was stored: {jobs:?}");
    Ok(())
}

#[test]
fn watch_paths_are_relative_globs_that_compile() {
    let mut s = spec();
    s.watch_paths = vec!["api/**".into(), "**/*.rs".into(), "docs/?.md".into()];
    assert!(s.validate().is_ok());
    for bad in ["/api/**", "api**", "***", "a/**b", "x[1]", "a b", ""] {
        s.watch_paths = vec![bad.into()];
        assert_eq!(s.validate().err().and_then(|e| e.field()), Some("watch_paths"), "{bad:?}");
    }
}

#[tokio::test]
async fn the_https_policy_is_stored_and_updated() -> anyhow::Result<()> {
    let (_dir, store) = store().await?;
    let p = store.create_project("shop").await?;
    let created = store.create_service(p.id, &spec()).await?;
    assert!(!created.spec.https_redirect && !created.spec.hsts, "both off by default");
    let mut secure = created.spec.clone();
    (secure.https_redirect, secure.hsts) = (true, true);
    store.update_service(created.id, &secure).await?;
    let read = store.get_service(created.id).await?;
    assert!(read.spec.https_redirect && read.spec.hsts, "{:?}", read.spec);
    Ok(())
}
