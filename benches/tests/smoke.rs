//! CI smoke test of the load generator: a tiny `surge` against every
//! backend, checked for correctness only — zero over-allocation, and every
//! student either placed or refused with a typed `NoCapacity`. No timing is
//! asserted: speed is measured by `vdi-loadgen`, not by tests.
//!
//! Redis comes from `REDIS_URL` (default `redis://127.0.0.1:6379`),
//! PostgreSQL from `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). An unreachable backend
//! is skipped, or fails the test under `VDI_REQUIRE_BACKENDS=1`.

use std::time::Duration;

use indicatif::ProgressBar;
use vdi_cluster_benches::baseline::{naive, raw_ceiling};
use vdi_cluster_benches::cluster::Tuning;
use vdi_cluster_benches::cover::{CoverConfig, cover};
use vdi_cluster_benches::deploy::{Backend, Deployment};
use vdi_cluster_benches::heartbeat::{HeartbeatConfig, heartbeats};
use vdi_cluster_benches::steady::{SteadyConfig, steady};
use vdi_cluster_benches::surge::{SurgeConfig, SurgeReport, surge};
use vdi_cluster_core::testkit::backend_unreachable;

const WORKERS: usize = 20;
const SLOTS: u32 = 5;
const STUDENTS: usize = 200;
const REPLICAS: usize = 2;

fn tiny() -> SurgeConfig {
    SurgeConfig {
        workers: WORKERS,
        slots: SLOTS,
        students: STUDENTS,
        exams: 3,
        concurrency: 16,
        warmup: 20,
        // A bound on the loop, not an assertion: the run stops by itself.
        time_limit: Duration::from_secs(120),
        tuning: Tuning::default(),
        pg_pool: 4,
        breakdown: true,
        booked: false,
    }
}

fn check(backend: &str, report: &SurgeReport) {
    let t = &report.tally;
    assert_eq!(t.queued, 0, "{backend}: nothing is booked: {report:?}");
    assert_eq!(report.not_started, 0, "{backend}: {report:?}");
    assert_eq!(t.errors, 0, "{backend}: {:?}", t.first_error);
    assert_eq!(t.existing, 0, "{backend}: {report:?}");
    assert_eq!(
        t.placed + t.no_capacity,
        STUDENTS as u64,
        "{backend}: every student is placed or refused with NoCapacity: {report:?}"
    );
    // Capacity is 100 slots for 200 students: all of it is used, no more.
    assert_eq!(
        t.placed,
        WORKERS as u64 * u64::from(SLOTS),
        "{backend}: {report:?}"
    );
    assert_eq!(report.audit.over_allocations, 0, "{backend}: {report:?}");
    assert_eq!(report.worker_side_over, 0, "{backend}: {report:?}");
    assert_eq!(report.audit.counter_drift, 0, "{backend}: {report:?}");
    assert_eq!(
        report.audit.dispatches as u64, t.placed,
        "{backend}: {report:?}"
    );
    assert!(report.is_correct());
}

/// Opens a deployment, or skips (returns `None`) when the backend is down.
async fn open(backend: &Backend) -> Option<Deployment> {
    match Deployment::open(backend, REPLICAS, 4).await {
        Ok(d) => Some(d),
        Err(e) => backend_unreachable(backend.name(), backend.url(), &format!("{e:#}")),
    }
}

async fn surge_on(backend: Backend) {
    let Some(deployment) = open(&backend).await else {
        return;
    };
    let result = surge(&deployment, &tiny(), &ProgressBar::hidden()).await;
    deployment.close().await;
    check(backend.name(), &result.expect("surge runs"));
}

/// With the exams booked, the students beyond the fleet wait in their
/// exams' queues (202) instead of being refused, and the fleet is used
/// exactly as without bookings.
async fn booked_surge_on(backend: Backend) {
    let Some(deployment) = open(&backend).await else {
        return;
    };
    let config = SurgeConfig {
        booked: true,
        ..tiny()
    };
    let result = surge(&deployment, &config, &ProgressBar::hidden()).await;
    deployment.close().await;
    let report = result.expect("booked surge runs");
    let t = &report.tally;
    let name = backend.name();
    assert_eq!(t.errors, 0, "{name}: {:?}", t.first_error);
    assert_eq!(
        t.no_capacity, 0,
        "{name}: refused instead of queued: {report:?}"
    );
    assert_eq!(
        t.placed,
        WORKERS as u64 * u64::from(SLOTS),
        "{name}: {report:?}"
    );
    assert_eq!(t.placed + t.queued, STUDENTS as u64, "{name}: {report:?}");
    assert!(report.is_correct(), "{name}: {report:?}");
}

fn redis() -> Backend {
    Backend::Redis(std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()))
}

fn postgres() -> Backend {
    Backend::Postgres(
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_on_memory() {
    surge_on(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_on_redis() {
    surge_on(redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_on_postgres() {
    surge_on(postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booked_surge_on_memory() {
    booked_surge_on(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booked_surge_on_redis() {
    booked_surge_on(redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booked_surge_on_postgres() {
    booked_surge_on(postgres()).await;
}

/// The baselines run and count what they did; the raw ceiling (the
/// backend's own atomic step) never over-allocates. The naive baseline may:
/// that is its point, so nothing is asserted about it beyond running.
async fn baselines_on(backend: Backend) {
    let config = tiny();
    for naive_too in [false, true] {
        if naive_too && backend == Backend::Memory {
            continue;
        }
        let Some(deployment) = open(&backend).await else {
            return;
        };
        let result = if naive_too {
            naive(&deployment, &config, &ProgressBar::hidden()).await
        } else {
            raw_ceiling(&deployment, &config, &ProgressBar::hidden()).await
        };
        deployment.close().await;
        let report = result.expect("baseline runs");
        let t = &report.tally;
        assert_eq!(t.errors, 0, "{}: {:?}", backend.name(), t.first_error);
        assert_eq!(t.reserved + t.refused, STUDENTS as u64);
        if !naive_too {
            assert_eq!(t.reserved, WORKERS as u64 * u64::from(SLOTS));
            assert_eq!(report.audit.over_allocations, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_on_memory() {
    baselines_on(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_on_redis() {
    baselines_on(redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_on_postgres() {
    baselines_on(postgres()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_and_steady_on_memory() {
    let deployment = open(&Backend::Memory).await.expect("memory opens");
    let hb = heartbeats(
        &deployment,
        &HeartbeatConfig {
            workers: WORKERS,
            slots: SLOTS,
            concurrency: 8,
            heartbeats: 400,
            time_limit: Duration::from_secs(60),
            tuning: Tuning::default(),
        },
        &ProgressBar::hidden(),
    )
    .await
    .expect("heartbeat runs");
    assert_eq!(hb.errors, 0, "{:?}", hb.first_error);
    assert_eq!(hb.accepted + hb.stale, 400);

    let deployment = open(&Backend::Memory).await.expect("memory opens");
    let report = steady(
        &deployment,
        &SteadyConfig {
            workers: WORKERS,
            slots: SLOTS,
            rate: 400,
            concurrency: 16,
            phase: Duration::from_millis(500),
            reconcile_pause: Duration::from_millis(50),
            ..SteadyConfig::default()
        },
        &ProgressBar::hidden(),
    )
    .await
    .expect("steady runs");
    assert_eq!(report.phases.len(), 2);
    for p in &report.phases {
        assert_eq!(p.errors, 0, "{}: {:?}", p.name, p.first_error);
    }
    assert!(report.phases[1].reconcile.is_some());
    assert_eq!(report.audit.over_allocations, 0);
    assert_eq!(report.audit.counter_drift, 0);
    assert_eq!(report.audit.dispatches, report.live);
}

/// A tiny `cover`: 1,000 dispatches, 30 a page, 2 pages a step — the
/// leader's pass reads each once over 17 steps and completes, and so does
/// an operator's pass. Correctness only.
async fn cover_on(backend: Backend) {
    let Some(deployment) = open(&backend).await else {
        return;
    };
    let config = CoverConfig {
        dispatches: 1_000,
        workers: WORKERS,
        exams: 3,
        concurrency: 16,
        scan_count: 30,
        pages_per_step: 2,
    };
    let result = cover(&deployment, &config, &ProgressBar::hidden()).await;
    deployment.close().await;
    let report = result.expect("cover runs");
    let name = backend.name();
    assert!(report.correct(), "{name}: {report:?}");
    assert_eq!(report.steps, 17, "{name}: 1,000 / 60 a step, and the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cover_on_memory() {
    cover_on(Backend::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cover_on_redis() {
    cover_on(redis()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cover_on_postgres() {
    cover_on(postgres()).await;
}
