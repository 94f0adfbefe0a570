//! The notifications page's record and "Send test": a test message sent now
//! to local HTTP receivers, recorded with its result (a 200, a 500, a
//! refused connection), shown on the page newest first without any part of
//! a URL's secret; viewers cannot send one.

use app::wire::{Caller, Role};
use server::{
    engine::EngineError,
    notify::{deliveries::KEPT_PER_TARGET, page::RECENT_PER_TARGET, TEST_EVENT},
    projects::ProjectStore,
    testkit::{
        engine::{anyhow_of, user},
        wait::unique_suffix,
    },
};

use crate::notify::{bare_engine, target, Receiver};

#[tokio::test]
async fn send_test_records_each_result_and_the_page_shows_them_without_secrets() -> anyhow::Result<()> {
    let (engine, _data) = bare_engine().await?;
    let project = ProjectStore::new(engine.db.clone()).create_project("shop").await?;
    let admin = user(Role::Admin);
    let secret = format!("s3cr3t-{}", unique_suffix());
    let good = Receiver::start(0).await?;
    let failing = Receiver::start(usize::MAX).await?;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let create = |name: &str, kind: &str, url: String| {
        let engine = engine.clone();
        let admin = admin.clone();
        let new = target(name, kind, &url, &["build.failed"]);
        async move { engine.create_notification_target(&admin, project.id, new).await.map_err(anyhow_of) }
    };
    let ok_target = create("ok", "webhook", good.url(&secret)).await?;
    let bad_target = create("answers-500", "slack", failing.url(&secret)).await?;
    let dead_target =
        create("dead", "webhook", format!("http://{closed}/hook/{secret}?token={secret}")).await?;

    // A viewer may look but not send: refused before anything is sent.
    let refused = engine.send_test_notification(&user(Role::Viewer), ok_target.id).await;
    assert!(matches!(refused, Err(EngineError::Access(_))), "{refused:?}");
    let refused = engine.send_test_notification(&Caller::Anonymous, ok_target.id).await;
    assert!(matches!(refused, Err(EngineError::Access(_))), "{refused:?}");
    assert!(good.hits().is_empty(), "a refused call sent a request");
    let missing = engine.send_test_notification(&user(Role::Deployer), dead_target.id + 100).await;
    assert!(matches!(missing, Err(EngineError::NotFound(_))), "{missing:?}");

    // A deployer sends; each result is the answer and is on record.
    let deployer = user(Role::Deployer);
    let sent = engine.send_test_notification(&deployer, ok_target.id).await.map_err(anyhow_of)?;
    assert!(sent.ok && sent.http_status == Some(200) && sent.error.is_none(), "{sent:?}");
    assert_eq!((sent.event.as_str(), sent.attempt), (TEST_EVENT, 1));
    let hit = good.wait_hits(1).await?.remove(0);
    assert_eq!(hit.body["event"], TEST_EVENT);
    assert_eq!(hit.body["project"], "shop");
    assert_eq!(hit.headers.get("x-slipway-event").and_then(|v| v.to_str().ok()), Some(TEST_EVENT));
    assert_eq!(hit.path, format!("/hook/{secret}"));

    let refused_by_target =
        engine.send_test_notification(&deployer, bad_target.id).await.map_err(anyhow_of)?;
    assert!(!refused_by_target.ok, "{refused_by_target:?}");
    assert_eq!(refused_by_target.http_status, Some(500));
    let slack = failing.wait_hits(1).await?.remove(0);
    let text = slack.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("test notification") && text.contains("shop"), "{text}");

    let unreachable = engine.send_test_notification(&deployer, dead_target.id).await.map_err(anyhow_of)?;
    assert!(!unreachable.ok && unreachable.http_status.is_none(), "{unreachable:?}");
    let error = unreachable.error.clone().unwrap_or_default();
    assert!(!error.is_empty(), "a failure without a reason");
    assert!(!error.contains(&secret) && !error.contains("/hook"), "the error shows the URL: {error}");

    // The page: project named, each target's deliveries newest first,
    // nothing secret anywhere in it.
    let page = engine.notifications_overview(&user(Role::Viewer), project.id).await.map_err(anyhow_of)?;
    assert_eq!(page.project.name, "shop");
    assert_eq!(page.targets.len(), 3);
    let of = |id: i64| page.deliveries.iter().filter(|d| d.target_id == id).cloned().collect::<Vec<_>>();
    assert_eq!(of(ok_target.id), std::slice::from_ref(&sent));
    assert_eq!(of(bad_target.id), [refused_by_target]);
    assert_eq!(of(dead_target.id), [unreachable]);
    assert!(!format!("{:?} {:?}", page.targets, page.deliveries).contains(&secret));

    // Newest first, at most RECENT_PER_TARGET each; the store keeps
    // KEPT_PER_TARGET.
    for _ in 0..RECENT_PER_TARGET + 2 {
        engine.send_test_notification(&deployer, ok_target.id).await.map_err(anyhow_of)?;
    }
    let page = engine.notifications_overview(&user(Role::Viewer), project.id).await.map_err(anyhow_of)?;
    let ids: Vec<i64> =
        page.deliveries.iter().filter(|d| d.target_id == ok_target.id).map(|d| d.id).collect();
    assert_eq!(ids.len(), RECENT_PER_TARGET as usize);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "not newest first: {ids:?}");
    assert!(!ids.contains(&sent.id), "the oldest should have dropped off the page");
    assert_eq!(page.deliveries.iter().filter(|d| d.target_id == dead_target.id).count(), 1);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notification_deliveries WHERE target_id = ?")
        .bind(ok_target.id)
        .fetch_one(&engine.db)
        .await?;
    assert_eq!(stored, (RECENT_PER_TARGET + 3).min(KEPT_PER_TARGET));

    // Audited, and a viewer's attempt left no row.
    let tests: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'notification.test'")
            .fetch_one(&engine.db)
            .await?;
    assert_eq!(tests, RECENT_PER_TARGET + 5);
    Ok(())
}
