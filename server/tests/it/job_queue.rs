//! The durable job queue and worker pool on a real SQLite file.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use chrono::Utc;
use server::{
    db::Db,
    jobs::{
        recover_expired, CancelOutcome, Heartbeat, Job, JobContext, JobHandler, JobQueue, JobStatus, NewJob,
        Outcome, RecoveryAction, Registry, SqliteJobQueue, WorkerConfig, WorkerPool,
    },
    testkit::TestDataDir,
};
use tokio::sync::Notify;

const MINUTE: Duration = Duration::from_secs(60);

struct Fixture {
    _dir: TestDataDir,
    db: Db,
    queue: Arc<SqliteJobQueue>,
}

impl Fixture {
    async fn new() -> anyhow::Result<Self> {
        let dir = TestDataDir::new()?;
        let db = dir.open_db().await?;
        let queue = Arc::new(SqliteJobQueue::new(db.clone()));
        Ok(Fixture { _dir: dir, db, queue })
    }

    fn dyn_queue(&self) -> Arc<dyn JobQueue> {
        self.queue.clone()
    }

    /// Creates a service (and its project on first use); returns its id.
    async fn service(&self, name: &str) -> anyhow::Result<i64> {
        let now = server::db::now_rfc3339();
        sqlx::query("INSERT OR IGNORE INTO projects (name, created_at) VALUES ('proj', ?)")
            .bind(&now)
            .execute(&self.db)
            .await?;
        let id = sqlx::query_scalar(
            "INSERT INTO services (project_id, name, git_url, port, created_at, updated_at) \
             SELECT id, ?, 'https://example.com/o/r.git', 8080, ?, ? FROM projects WHERE name = 'proj' \
             RETURNING id",
        )
        .bind(name)
        .bind(&now)
        .bind(&now)
        .fetch_one(&self.db)
        .await?;
        Ok(id)
    }

    async fn job(&self, id: i64) -> anyhow::Result<Job> {
        self.queue.get(id).await?.ok_or_else(|| anyhow::anyhow!("job {id} not found"))
    }

    /// Waits until the job is in a terminal state.
    async fn finished(&self, id: i64) -> anyhow::Result<Job> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let job = self.job(id).await?;
            if job.status.is_terminal() {
                return Ok(job);
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "job {id} still {}", job.status);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn fast_config(workers: usize) -> WorkerConfig {
    WorkerConfig {
        workers,
        heartbeat: Duration::from_millis(100),
        poll: Duration::from_millis(100),
        recovery_interval: Duration::from_secs(3600),
    }
}

/// Sets its flag when dropped: proves a handler future was dropped.
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A handler that never finishes on its own: it reports that it started,
/// holds a drop guard, and records whether its cancellation token fired.
#[derive(Default)]
struct Stuck {
    started: Notify,
    dropped: Arc<AtomicBool>,
    token_cancelled: Arc<AtomicBool>,
    finished: Mutex<Vec<Outcome>>,
}

#[async_trait::async_trait]
impl JobHandler for Stuck {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let _guard = DropGuard(self.dropped.clone());
        let cancel = ctx.cancel.clone();
        let flag = self.token_cancelled.clone();
        tokio::spawn(async move {
            cancel.cancelled().await;
            flag.store(true, Ordering::SeqCst);
        });
        self.started.notify_one();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }

    async fn on_finished(&self, job: &Job, outcome: &Outcome) -> anyhow::Result<()> {
        assert_eq!(job.status, JobStatus::Running, "called before the job row is final");
        self.finished.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push(outcome.clone());
        Ok(())
    }
}

#[tokio::test]
async fn enqueue_commits_or_rolls_back_with_the_callers_transaction() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let service = fx.service("api").await?;
    let job = NewJob::new("build", Some(service), MINUTE).payload(serde_json::json!({"ref": "main"}));
    let insert_build = "INSERT INTO builds (service_id, number, job_id, git_ref, trigger, created_at) \
                        VALUES (?, 1, ?, 'main', 'manual', ?)";

    let mut tx = fx.db.begin().await?;
    let id = fx.queue.enqueue(&mut tx, &job).await?;
    sqlx::query(insert_build)
        .bind(service)
        .bind(id)
        .bind(server::db::now_rfc3339())
        .execute(&mut *tx)
        .await?;
    tx.rollback().await?;
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&fx.db).await?;
    let builds: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM builds").fetch_one(&fx.db).await?;
    assert_eq!((jobs, builds), (0, 0), "rollback leaves neither row");
    assert!(fx.queue.claim("w", Utc::now()).await?.is_none());

    let mut tx = fx.db.begin().await?;
    let id = fx.queue.enqueue(&mut tx, &job).await?;
    sqlx::query(insert_build)
        .bind(service)
        .bind(id)
        .bind(server::db::now_rfc3339())
        .execute(&mut *tx)
        .await?;
    // (A claimer would wait here: SQLite has one writer at a time, and this
    // transaction holds the write lock until it ends.)
    tx.commit().await?;
    fx.queue.notify();

    let claimed = fx.queue.claim("w", Utc::now()).await?.expect("committed job is claimable");
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.status, JobStatus::Running);
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.lease_owner.as_deref(), Some("w"));
    assert_eq!(claimed.payload, serde_json::json!({"ref": "main"}));
    assert_eq!(claimed.timeout, MINUTE);
    let build_job: Option<i64> = sqlx::query_scalar("SELECT job_id FROM builds WHERE service_id = ?")
        .bind(service)
        .fetch_one(&fx.db)
        .await?;
    assert_eq!(build_job, Some(id));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_job_is_claimed_twice_by_concurrent_claimers() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    const JOBS: usize = 200;
    for _ in 0..JOBS {
        fx.queue.enqueue_now(&NewJob::new("noop", None, MINUTE)).await?;
    }
    let mut claimers = Vec::new();
    for c in 0..4 {
        let queue = fx.queue.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut mine = Vec::new();
            while let Some(job) = queue.claim(&owner, Utc::now()).await? {
                assert_eq!(job.lease_owner.as_deref(), Some(owner.as_str()));
                mine.push(job.id);
                assert!(queue.complete(job.id, &owner, &Outcome::Succeeded, Utc::now()).await?);
            }
            anyhow::Ok(mine)
        }));
    }
    let mut all = Vec::new();
    let mut per_claimer = Vec::new();
    for claimer in claimers {
        let mine = claimer.await??;
        per_claimer.push(mine.len());
        all.extend(mine);
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), JOBS, "every job claimed exactly once (per claimer: {per_claimer:?})");
    assert_eq!(unique.len(), JOBS, "no job claimed twice");
    let stats: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(MAX(attempts), 0) FROM jobs WHERE status = 'succeeded' AND attempts = 1",
    )
    .fetch_one(&fx.db)
    .await?;
    assert_eq!(stats, (JOBS as i64, 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_run_two_jobs_of_one_service() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    const JOBS: usize = 200;
    let mut services = Vec::new();
    for i in 0..10 {
        services.push(fx.service(&format!("s{i}")).await?);
    }
    for i in 0..JOBS {
        fx.queue.enqueue_now(&NewJob::new("noop", Some(services[i % services.len()]), MINUTE)).await?;
    }
    let running: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let mut claimers = Vec::new();
    for c in 0..4 {
        let (queue, running, done) = (fx.queue.clone(), running.clone(), done.clone());
        claimers.push(tokio::spawn(async move {
            let owner = format!("claimer-{c}");
            let mut mine = Vec::new();
            while done.load(Ordering::SeqCst) < JOBS {
                let Some(job) = queue.claim(&owner, Utc::now()).await? else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let service = job.service_id.ok_or_else(|| anyhow::anyhow!("no service"))?;
                let fresh = running.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(service);
                anyhow::ensure!(fresh, "two jobs of service {service} running at once");
                mine.push(job.id);
                tokio::task::yield_now().await;
                running.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.remove(&service);
                anyhow::ensure!(queue.complete(job.id, &owner, &Outcome::Succeeded, Utc::now()).await?);
                done.fetch_add(1, Ordering::SeqCst);
            }
            anyhow::Ok(mine)
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await??);
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (JOBS, JOBS), "each job claimed exactly once");
    Ok(())
}

#[tokio::test]
async fn claim_serializes_each_service_and_runs_services_in_parallel() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let (a, b) = (fx.service("a").await?, fx.service("b").await?);
    let a1 = fx.queue.enqueue_now(&NewJob::new("k", Some(a), MINUTE)).await?;
    let a2 = fx.queue.enqueue_now(&NewJob::new("k", Some(a), MINUTE)).await?;
    let b1 = fx.queue.enqueue_now(&NewJob::new("k", Some(b), MINUTE)).await?;
    let free = fx.queue.enqueue_now(&NewJob::new("k", None, MINUTE)).await?;

    let now = Utc::now();
    assert_eq!(fx.queue.claim("w1", now).await?.map(|j| j.id), Some(a1));
    assert_eq!(fx.queue.claim("w2", now).await?.map(|j| j.id), Some(b1), "a2 waits for a1");
    assert_eq!(fx.queue.claim("w3", now).await?.map(|j| j.id), Some(free), "service-less jobs are free");
    assert_eq!(fx.queue.claim("w4", now).await?.map(|j| j.id), None);
    assert!(fx.queue.complete(a1, "w1", &Outcome::Succeeded, now).await?);
    assert_eq!(fx.queue.claim("w4", now).await?.map(|j| j.id), Some(a2));
    Ok(())
}

/// Sleeps a little while tracking how many of its jobs run at once, overall
/// and per service.
#[derive(Default)]
struct Tracker {
    state: Mutex<(usize, HashMap<i64, usize>)>,
    max_total: AtomicUsize,
    max_per_service: AtomicUsize,
}

#[async_trait::async_trait]
impl JobHandler for Tracker {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        let service = ctx.job.service_id.unwrap_or(0);
        {
            let mut state = self.state.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            state.0 += 1;
            let total = state.0;
            let mine = state.1.entry(service).or_default();
            *mine += 1;
            self.max_total.fetch_max(total, Ordering::SeqCst);
            self.max_per_service.fetch_max(*mine, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        let mut state = self.state.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        state.0 -= 1;
        *state.1.entry(service).or_default() -= 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_pool_runs_one_job_per_service_and_services_in_parallel() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let tracker = Arc::new(Tracker::default());
    let registry = Registry::new().register("track", tracker.clone());
    let services = [fx.service("a").await?, fx.service("b").await?, fx.service("c").await?];
    let mut ids = Vec::new();
    for _ in 0..5 {
        for service in services {
            ids.push(fx.queue.enqueue_now(&NewJob::new("track", Some(service), MINUTE)).await?);
        }
    }
    let (pool, _) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(4)).await?;
    for id in &ids {
        assert_eq!(fx.finished(*id).await?.status, JobStatus::Succeeded);
    }
    pool.shutdown().await;
    assert_eq!(tracker.max_per_service.load(Ordering::SeqCst), 1, "one job at a time per service");
    assert!(tracker.max_total.load(Ordering::SeqCst) >= 2, "services ran in parallel");
    Ok(())
}

/// Records `on_interrupted` calls and answers with a fixed action.
struct Recovering {
    action: RecoveryAction,
    interrupted: Mutex<Vec<(i64, u32)>>,
}

#[async_trait::async_trait]
impl JobHandler for Recovering {
    async fn run(&self, _ctx: JobContext) -> anyhow::Result<()> {
        Ok(())
    }

    async fn on_interrupted(&self, job: &Job) -> anyhow::Result<RecoveryAction> {
        assert_eq!(job.status, JobStatus::Interrupted);
        self.interrupted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((job.id, job.attempts));
        Ok(self.action)
    }
}

#[tokio::test]
async fn expired_leases_become_interrupted_and_are_retried_as_the_hook_says() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let build_hook = Arc::new(Recovering { action: RecoveryAction::Retry, interrupted: Mutex::default() });
    let deploy_hook = Arc::new(Recovering { action: RecoveryAction::GiveUp, interrupted: Mutex::default() });
    let registry =
        Registry::new().register("build", build_hook.clone()).register("deploy", deploy_hook.clone());
    let (a, b) = (fx.service("a").await?, fx.service("b").await?);
    let build = fx.queue.enqueue_now(&NewJob::new("build", Some(a), MINUTE).max_attempts(2)).await?;
    let deploy = fx.queue.enqueue_now(&NewJob::new("deploy", Some(b), MINUTE)).await?;

    // A process claims both, then dies (no heartbeat, no completion).
    let t0 = Utc::now();
    assert!(fx.queue.claim("dead", t0).await?.is_some());
    assert!(fx.queue.claim("dead", t0).await?.is_some());

    // Leases still valid: nothing happens.
    let report = recover_expired(fx.queue.as_ref(), &registry, t0 + chrono::Duration::seconds(5)).await?;
    assert!(report.interrupted.is_empty());
    assert_eq!(fx.job(build).await?.status, JobStatus::Running);

    let t1 = t0 + chrono::Duration::seconds(31);
    let report = recover_expired(fx.queue.as_ref(), &registry, t1).await?;
    assert_eq!(report.interrupted, vec![build, deploy]);
    assert_eq!(report.requeued, vec![build]);
    assert_eq!(*build_hook.interrupted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?, vec![(build, 1)]);
    assert_eq!(*deploy_hook.interrupted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?, vec![(deploy, 1)]);

    let d = fx.job(deploy).await?;
    assert_eq!(d.status, JobStatus::Interrupted, "a deploy is never retried");
    assert!(d.lease_owner.is_none() && d.finished_at.is_some());
    assert!(d.last_error.as_deref().is_some_and(|e| e.contains("lease expired")));
    assert_eq!(fx.job(build).await?.status, JobStatus::Queued, "a build is retried");

    // The dead worker's late completion is refused.
    assert!(!fx.queue.complete(deploy, "dead", &Outcome::Succeeded, t1).await?);
    assert_eq!(fx.queue.heartbeat(deploy, "dead", t1).await?, Heartbeat::Lost);

    // The retry dies too: attempts are used up, so it stays interrupted.
    let retry = fx.queue.claim("dead-again", t1).await?.expect("retry is claimable");
    assert_eq!((retry.id, retry.attempts), (build, 2));
    let t2 = t1 + chrono::Duration::seconds(31);
    let report = recover_expired(fx.queue.as_ref(), &registry, t2).await?;
    assert_eq!(report.interrupted, vec![build]);
    assert!(report.requeued.is_empty());
    assert_eq!(fx.job(build).await?.status, JobStatus::Interrupted);
    assert_eq!(build_hook.interrupted.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn startup_recovery_runs_before_the_pool_claims() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let hook = Arc::new(Recovering { action: RecoveryAction::Retry, interrupted: Mutex::default() });
    let registry = Registry::new().register("build", hook.clone());
    let service = fx.service("a").await?;
    let id = fx.queue.enqueue_now(&NewJob::new("build", Some(service), MINUTE).max_attempts(2)).await?;
    // Claimed by a process that died, its (short) lease now over.
    let dead = SqliteJobQueue::new(fx.db.clone()).with_lease(Duration::from_millis(1));
    assert!(dead.claim("dead", Utc::now()).await?.is_some());
    tokio::time::sleep(Duration::from_millis(20)).await;

    let (pool, report) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(1)).await?;
    assert_eq!(report.interrupted, vec![id]);
    assert_eq!(report.requeued, vec![id]);
    let job = fx.finished(id).await?;
    assert_eq!((job.status, job.attempts), (JobStatus::Succeeded, 2));
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn timeout_marks_timed_out_and_drops_the_handler_future() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let stuck = Arc::new(Stuck::default());
    let registry = Registry::new().register("stuck", stuck.clone());
    let (pool, _) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(1)).await?;
    let id = fx.queue.enqueue_now(&NewJob::new("stuck", None, Duration::from_millis(300))).await?;

    let job = fx.finished(id).await?;
    assert_eq!(job.status, JobStatus::TimedOut);
    assert_eq!(job.last_error.as_deref(), Some("timed out"));
    assert_eq!(*stuck.finished.lock().map_err(|_| anyhow::anyhow!("poisoned"))?, vec![Outcome::TimedOut]);
    assert!(stuck.dropped.load(Ordering::SeqCst), "handler future dropped");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(stuck.token_cancelled.load(Ordering::SeqCst), "cancellation token fired");
    assert!(pool.running_jobs().is_empty());
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cancel_marks_cancelled_and_drops_the_handler_future() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let stuck = Arc::new(Stuck::default());
    let registry = Registry::new().register("stuck", stuck.clone());
    let service = fx.service("a").await?;
    let (pool, _) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(2)).await?;
    let running = fx.queue.enqueue_now(&NewJob::new("stuck", Some(service), MINUTE)).await?;
    tokio::time::timeout(Duration::from_secs(5), stuck.started.notified()).await?;
    // Queued behind the running one (same service): cancelled without running.
    let queued = fx.queue.enqueue_now(&NewJob::new("stuck", Some(service), MINUTE)).await?;
    assert_eq!(pool.cancel(queued).await?, CancelOutcome::CancelledQueued);
    assert_eq!(fx.job(queued).await?.status, JobStatus::Cancelled);

    let started = tokio::time::Instant::now();
    assert_eq!(pool.cancel(running).await?, CancelOutcome::Requested);
    let job = fx.finished(running).await?;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(2), "in-process cancel is immediate");
    assert_eq!(*stuck.finished.lock().map_err(|_| anyhow::anyhow!("poisoned"))?, vec![Outcome::Cancelled]);
    assert!(stuck.dropped.load(Ordering::SeqCst), "handler future dropped");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(stuck.token_cancelled.load(Ordering::SeqCst), "cancellation token fired");
    assert_eq!(pool.cancel(running).await?, CancelOutcome::AlreadyFinished);
    assert_eq!(pool.cancel(9999).await?, CancelOutcome::NotFound);
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cancel_requested_in_the_database_is_seen_by_the_heartbeat() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let stuck = Arc::new(Stuck::default());
    let registry = Registry::new().register("stuck", stuck.clone());
    let (pool, _) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(1)).await?;
    let id = fx.queue.enqueue_now(&NewJob::new("stuck", None, MINUTE)).await?;
    tokio::time::timeout(Duration::from_secs(5), stuck.started.notified()).await?;
    // As another process would: only the flag in the row.
    assert_eq!(fx.queue.request_cancel(id, Utc::now()).await?, CancelOutcome::Requested);
    assert_eq!(fx.finished(id).await?.status, JobStatus::Cancelled);
    assert!(stuck.dropped.load(Ordering::SeqCst));
    pool.shutdown().await;
    Ok(())
}

/// Reports progress, then waits to be released.
#[derive(Default)]
struct Progressing {
    reported: Notify,
    release: Notify,
}

#[async_trait::async_trait]
impl JobHandler for Progressing {
    async fn run(&self, ctx: JobContext) -> anyhow::Result<()> {
        ctx.set_progress("building", 40).await?;
        self.reported.notify_one();
        self.release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn progress_is_persisted() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let handler = Arc::new(Progressing::default());
    let registry = Registry::new().register("p", handler.clone());
    let (pool, _) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(1)).await?;
    let id = fx.queue.enqueue_now(&NewJob::new("p", None, MINUTE)).await?;
    tokio::time::timeout(Duration::from_secs(5), handler.reported.notified()).await?;
    let job = fx.job(id).await?;
    assert_eq!((job.status, job.phase.as_deref(), job.progress), (JobStatus::Running, Some("building"), 40));
    handler.release.notify_one();
    let job = fx.finished(id).await?;
    assert_eq!(
        (job.status, job.phase.as_deref(), job.progress),
        (JobStatus::Succeeded, Some("building"), 100)
    );
    pool.shutdown().await;
    Ok(())
}

struct Failing;

#[async_trait::async_trait]
impl JobHandler for Failing {
    async fn run(&self, _ctx: JobContext) -> anyhow::Result<()> {
        Err(anyhow::anyhow!("step 3/5 failed").context("docker build"))
    }
}

#[tokio::test]
async fn handler_errors_and_unknown_kinds_fail_the_job() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let registry = Registry::new().register("fail", Arc::new(Failing));
    let (pool, _) = WorkerPool::start(fx.dyn_queue(), registry, fast_config(1)).await?;
    let failing = fx.queue.enqueue_now(&NewJob::new("fail", None, MINUTE)).await?;
    let unknown = fx.queue.enqueue_now(&NewJob::new("nope", None, MINUTE)).await?;
    let job = fx.finished(failing).await?;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.last_error.as_deref(), Some("docker build: step 3/5 failed"));
    let job = fx.finished(unknown).await?;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.last_error.as_deref().is_some_and(|e| e.contains("no handler")));
    pool.shutdown().await;
    Ok(())
}

/// Runs longer than a lease, relying on the heartbeat.
struct Slow;

#[async_trait::async_trait]
impl JobHandler for Slow {
    async fn run(&self, _ctx: JobContext) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(800)).await;
        Ok(())
    }
}

#[tokio::test]
async fn heartbeat_keeps_a_long_job_leased_against_recovery() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let queue: Arc<dyn JobQueue> =
        Arc::new(SqliteJobQueue::new(fx.db.clone()).with_lease(Duration::from_millis(300)));
    let registry = Registry::new().register("slow", Arc::new(Slow));
    let config = WorkerConfig { recovery_interval: Duration::from_millis(50), ..fast_config(1) };
    let (pool, _) = WorkerPool::start(queue.clone(), registry, config).await?;
    let id = fx.queue.enqueue_now(&NewJob::new("slow", None, MINUTE)).await?;
    queue.notify();
    let job = fx.finished(id).await?;
    assert_eq!((job.status, job.attempts), (JobStatus::Succeeded, 1), "never interrupted");
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn schema_rejects_unknown_statuses_and_out_of_range_progress() -> anyhow::Result<()> {
    let fx = Fixture::new().await?;
    let now = server::db::now_rfc3339();
    let bad_status = sqlx::query(
        "INSERT INTO jobs (kind, status, timeout_ms, run_after, created_at) VALUES ('k', 'bogus', 1, ?, ?)",
    )
    .bind(&now)
    .bind(&now)
    .execute(&fx.db)
    .await;
    assert!(bad_status.is_err());
    let bad_progress = sqlx::query(
        "INSERT INTO jobs (kind, progress, timeout_ms, run_after, created_at) VALUES ('k', 101, 1, ?, ?)",
    )
    .bind(&now)
    .bind(&now)
    .execute(&fx.db)
    .await;
    assert!(bad_progress.is_err());
    let running_without_lease = sqlx::query(
        "INSERT INTO jobs (kind, status, timeout_ms, run_after, created_at) VALUES ('k', 'running', 1, ?, ?)",
    )
    .bind(&now)
    .bind(&now)
    .execute(&fx.db)
    .await;
    assert!(running_without_lease.is_err());
    let service = fx.service("a").await?;
    let deploy = "INSERT INTO deployments (service_id, image_id, config, status, created_at) \
                  VALUES (?, 'sha256:x', '{}', ?, ?)";
    sqlx::query(deploy).bind(service).bind("live").bind(&now).execute(&fx.db).await?;
    let second_live = sqlx::query(deploy).bind(service).bind("live").bind(&now).execute(&fx.db).await;
    assert!(second_live.is_err(), "one live deployment per service");
    let bad = sqlx::query(deploy).bind(service).bind("running").bind(&now).execute(&fx.db).await;
    assert!(bad.is_err());
    Ok(())
}
