//! The store follows the primary of a PostgreSQL deployment: a primary and
//! a hot standby started by the test, the store given both hosts (the
//! standby first). The primary is killed as a crash kills it and the
//! standby promoted, as Patroni or repmgr would: calls fail as
//! `Unavailable` meanwhile, then go to the promoted server without a new
//! store, and what was replicated before the crash is there. A store given
//! only a standby never writes to it.
//!
//! No test asserts how fast: a generous bound only turns a hang into a
//! failure.

use std::time::Duration;

use vdi_cluster_core::store::Registry;
use vdi_cluster_core::testkit::{wid, worker_record};
use vdi_cluster_core::{Error, Result};
use vdi_cluster_postgres::testkit::StandbyPair;
use vdi_cluster_postgres::{PgStore, PgStoreConfig};

/// Turns a hang into a test failure.
const HANG: Duration = Duration::from_secs(90);

fn quick() -> PgStoreConfig {
    PgStoreConfig::default()
        .acquire_timeout(Duration::from_secs(1))
        .statement_timeout(Duration::from_secs(2))
}

/// Retries `call` until it succeeds, failing only as `Unavailable`; a
/// hang past [`HANG`] fails the test.
async fn until_ok<T, F: Future<Output = Result<T>>>(what: &str, call: impl Fn() -> F) -> T {
    let retried = async {
        loop {
            match call().await {
                Ok(value) => return value,
                Err(Error::Unavailable { .. }) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(other) => panic!("{what}: {other:?}"),
            }
        }
    };
    tokio::time::timeout(HANG, retried)
        .await
        .unwrap_or_else(|_| panic!("{what}: still unavailable"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_the_promoted_standby() {
    let Some(mut pair) = StandbyPair::start().await else {
        return;
    };
    let store = PgStore::connect_lazy(&pair.url(), quick()).expect("a host list");
    until_ok("migrate", || store.migrate()).await;
    assert_eq!(
        store.primary().as_deref(),
        Some(pair.primary.name().as_str()),
        "the writable host, though the standby is listed first"
    );
    let before = store.primary_switches();

    let record = worker_record("w-before", 4, 0);
    until_ok("register", || store.put_worker(&record, None)).await;
    pair.until_caught_up().await;

    pair.primary.kill();
    let failed = tokio::time::timeout(HANG, store.workers())
        .await
        .expect("a call during the failover is bounded");
    assert!(
        matches!(failed, Err(Error::Unavailable { .. })),
        "{failed:?}"
    );

    pair.promote().await;
    let after = worker_record("w-after", 4, 0);
    until_ok("a write after the failover", || {
        store.put_worker(&after, None)
    })
    .await;
    assert_eq!(
        store.primary().as_deref(),
        Some(pair.standby.name().as_str())
    );
    assert!(store.primary_switches() > before, "the store moved");
    for code in ["w-before", "w-after"] {
        let id = wid(code);
        let stored = until_ok("read", || store.worker(&id)).await;
        assert!(stored.is_some(), "{code} is on the promoted server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_is_never_written() {
    let Some(pair) = StandbyPair::start().await else {
        return;
    };
    let url = format!(
        "postgres://postgres@{}/postgres?target_session_attrs=read-write",
        pair.standby.name()
    );
    let store = PgStore::connect_lazy(&url, quick()).expect("one host");
    let record = worker_record("w-1", 4, 0);
    let refused = tokio::time::timeout(HANG, store.put_worker(&record, None))
        .await
        .expect("bounded");
    assert!(
        matches!(refused, Err(Error::Unavailable { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.primary().as_deref(),
        Some(pair.standby.name().as_str())
    );
    assert_eq!(store.primary_switches(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_connections_were_idle_at_the_crash_still_finds_the_promoted_standby() {
    let Some(mut pair) = StandbyPair::start().await else {
        return;
    };
    // A pool that would keep retrying refused connections for two minutes
    // before failing a call: no call fails to tell the store to look.
    let patient = PgStoreConfig::default()
        .acquire_timeout(Duration::from_secs(120))
        .statement_timeout(Duration::from_secs(2));
    let store = PgStore::connect_lazy(&pair.url(), patient).expect("a host list");
    until_ok("migrate", || store.migrate()).await;
    let record = worker_record("w-before", 4, 0);
    until_ok("register", || store.put_worker(&record, None)).await;
    pair.until_caught_up().await;
    assert_eq!(
        store.primary().as_deref(),
        Some(pair.primary.name().as_str())
    );

    // The primary dies while every connection is idle, and the standby is
    // promoted before the next call.
    pair.primary.kill();
    pair.promote().await;
    let after = worker_record("w-after", 4, 0);
    let written = tokio::time::timeout(Duration::from_secs(60), store.put_worker(&after, None))
        .await
        .expect("the call reaches the promoted standby well before the pool's acquire timeout");
    assert!(written.is_ok(), "{written:?}");
    assert_eq!(
        store.primary().as_deref(),
        Some(pair.standby.name().as_str())
    );
}
