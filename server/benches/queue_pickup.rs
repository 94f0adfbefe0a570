//! Pickup latency of the job queue: time from `enqueue` (commit + notify) to
//! the handler running, with an idle worker waiting. Real SQLite file.
//!
//! `cargo bench -p server --bench queue_pickup`

use std::{sync::Arc, time::Duration};

use server::jobs::{
    JobContext, JobHandler, JobQueue, NewJob, Registry, SqliteJobQueue, WorkerConfig, WorkerPool,
};
use server::testkit::TestDataDir;
use tokio::{sync::mpsc, time::Instant};

const JOBS: usize = 1_000;

struct Pickup(mpsc::UnboundedSender<Instant>);

#[async_trait::async_trait]
impl JobHandler for Pickup {
    async fn run(&self, _ctx: JobContext) -> anyhow::Result<()> {
        let _ = self.0.send(Instant::now());
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let dir = TestDataDir::new()?;
        let db = dir.open_db().await?;
        let queue = Arc::new(SqliteJobQueue::new(db));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let registry = Registry::new().register("bench", Arc::new(Pickup(tx)));
        let dyn_queue: Arc<dyn JobQueue> = queue.clone();
        let (pool, _) = WorkerPool::start(dyn_queue, registry, WorkerConfig::with_workers(1)).await?;

        let job = NewJob::new("bench", None, Duration::from_secs(60));
        let mut latencies = Vec::with_capacity(JOBS);
        for _ in 0..JOBS {
            // Let the worker go idle (waiting on the notify) first.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let start = Instant::now();
            queue.enqueue_now(&job).await?;
            let running = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("worker stopped"))?;
            latencies.push(running.duration_since(start));
        }
        pool.shutdown().await;

        latencies.sort_unstable();
        let mean = latencies.iter().sum::<Duration>() / JOBS as u32;
        println!(
            "queue_pickup: {JOBS} jobs, enqueue -> running: p50 {:?}, p99 {:?}, max {:?}, mean {:?}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies[JOBS - 1],
            mean
        );
        Ok(())
    })
}
