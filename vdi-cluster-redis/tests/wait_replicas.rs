//! A store that waits for replicas (`WAIT`) on a Redis that has none: each
//! step waits for its own replicas and fails as "not replicated" when the
//! wait runs out — none waits behind another step's `WAIT` until its
//! deadline passes, as steps sharing one connection would (`WAIT` holds
//! back every later command of its connection).

mod common;

use std::time::Duration;

use common::{redis_url, test_prefix};
use vdi_cluster_core::testkit::worker_record;
use vdi_cluster_core::{Error, Registry};
use vdi_cluster_redis::RedisStore;

/// Catches a hang; nothing asserts on time.
const HANG: Duration = Duration::from_secs(60);

/// More steps at once than the store has connections, so some wait for a
/// free one too.
const STEPS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_waits_for_its_own_replicas_only() {
    let url = redis_url();
    let prefix = test_prefix();
    // The shared test server has no replica: every `WAIT 1` runs out.
    let store = match RedisStore::builder(&url)
        .prefix(&prefix)
        .timeout(Duration::from_secs(5))
        .wait_replicas(1, Duration::from_millis(200))
        .connect()
        .await
    {
        Ok(store) => store,
        Err(e) => {
            if std::env::var("VDI_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!("Redis at {url} is unreachable: {e}");
            }
            eprintln!("skipping: Redis at {url} is unreachable: {e}");
            return;
        }
    };
    let steps = (0..STEPS).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let record = worker_record(&format!("w{i}"), 4, 0);
            store.put_worker(&record, None).await
        })
    });
    let answers = tokio::time::timeout(HANG, futures_join(steps))
        .await
        .expect("every step answers");
    for answer in answers {
        match answer {
            Err(Error::Unavailable { source, .. }) => {
                let why = format!("{source:#}");
                assert!(
                    why.contains("0 of 1 replica(s) acknowledged"),
                    "a step failed for another reason than its own wait: {why}"
                );
            }
            other => panic!("expected the step to be refused as not replicated: {other:?}"),
        }
    }
    // Each write itself is on the primary (repeating it is safe): the
    // refusal only says it may not survive a failover. A handle that does
    // not wait reads them all.
    let reader = RedisStore::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
        .expect("a second handle connects");
    assert_eq!(reader.workers().await.expect("reads").len(), STEPS);
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut answers = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        answers.push(handle.await.expect("the step does not panic"));
    }
    answers
}
