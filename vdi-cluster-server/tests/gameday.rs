//! The short game day on Redis and on PostgreSQL: the built `vdi-cluster`
//! binary as 2 `serve` replicas and 4 worker agents on one store, a booked
//! exam of 80 students for 60 slots, and the timeline of faults (a worker
//! SIGKILLed, one SIGSTOPped then SIGCONTed, the lease-holding replica
//! SIGKILLed, the whole fleet restarted, the store restarted), driven by
//! the load generator's `gameday` (`vdi_cluster_benches::gameday`).
//!
//! Only the correctness checks are asserted — every student at one running
//! desktop or waiting in order, no slot held by nobody, 0 over-allocation,
//! every webhook delivered, no crash, no answer the API should never give,
//! no double click refused — never a time: the recovery times are printed
//! (run with `--nocapture`), and measured by `vdi-loadgen gameday`.
//!
//! On Redis the game day runs its own `redis-server` (from `PATH`) on a
//! free port, so that restarting it touches nobody's data; PostgreSQL
//! comes from `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`): a fresh database,
//! dropped afterwards, on a shared server that is not restarted (every
//! connection to the run's database is ended instead). No `redis-server`,
//! or an unreachable PostgreSQL, is a SKIP line, or a failure under
//! `VDI_REQUIRE_BACKENDS=1`. The two days run one after the other.

#![allow(missing_docs)]

use std::path::PathBuf;

use vdi_cluster_benches::deploy::{Backend, Deployment};
use vdi_cluster_benches::gameday::{GameDayConfig, game_day};
use vdi_cluster_core::testkit::backend_unreachable;

const BIN: &str = env!("CARGO_BIN_EXE_vdi-cluster");

/// The days share two cores: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether `backend` answers (a namespace opened and removed again).
async fn reachable(backend: &Backend) -> bool {
    match Deployment::open(backend, 1, 1).await {
        Ok(d) => {
            d.close().await;
            true
        }
        Err(e) => {
            backend_unreachable(backend.name(), backend.url(), &format!("{e:#}")).unwrap_or(false)
        }
    }
}

/// `redis-server` on `PATH`.
fn redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

async fn game_day_on(backend: Backend, config: impl FnOnce(&mut GameDayConfig)) {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = GameDayConfig::short(PathBuf::from(BIN), backend.clone());
    config(&mut c);
    let report = game_day(&c).await.expect("the game day runs");
    let mut text = format!("{}\nstore: {}\n\n", report.title(), report.store_detail);
    for table in report.tables() {
        text.push_str(&table.render());
        text.push('\n');
    }
    println!("{text}");
    assert!(
        report.passed(),
        "{}: failed checks: {:?}; logs in {:?}\n{text}",
        backend.name(),
        report.failures(),
        report.logs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_day_on_redis() {
    let Some(redis_server) = redis_server() else {
        backend_unreachable::<()>("redis-server", "PATH", &"not found");
        return;
    };
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    game_day_on(Backend::Redis(url), |c| c.redis_server = redis_server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_day_on_postgres() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let backend = Backend::Postgres(url);
    if !reachable(&backend).await {
        return;
    }
    game_day_on(backend, |_| {}).await;
}
