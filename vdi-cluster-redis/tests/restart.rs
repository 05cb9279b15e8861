//! A private `redis-server` is killed (SIGKILL) in the middle of a run and
//! started again on the same port: the same store handle reports
//! `Unavailable` while it is down, works again afterwards without being
//! rebuilt, and — with `appendonly yes` + `appendfsync always` — nothing
//! acknowledged before the kill is lost or counted twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vdi_cluster_core::store::Reservation;
use vdi_cluster_core::testkit::{request, wid, worker_record};
use vdi_cluster_core::{
    AuditLog, DispatchId, DispatchStore, Error, LeaderLease, Registry, SessionKey, Timestamp,
    WorkerId,
};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::testkit::PrivateRedis;

/// Generous bound that only catches a hang; nothing asserts on time.
const HANG: Duration = Duration::from_secs(60);

fn is_unavailable<T: std::fmt::Debug>(r: &vdi_cluster_core::Result<T>) -> bool {
    matches!(r, Err(Error::Unavailable { .. }))
}

async fn store_on(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .timeout(Duration::from_millis(500))
        .connection_timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("connects to the private server")
}

/// Waits (bounded) until `store` answers again.
async fn until_back(store: &RedisStore) {
    for _ in 0..600 {
        if store.ping().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the store never reconnected");
}

/// What the writer knows for sure.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged reservations (confirmed or not) not released since.
    live: BTreeMap<SessionKey, DispatchId>,
    /// Acknowledged releases.
    released: BTreeSet<SessionKey>,
    /// Sessions whose last operation failed: either outcome is possible.
    unknown: BTreeSet<SessionKey>,
    /// Operations acknowledged.
    acked: u64,
    /// Operations that failed.
    failed: u64,
}

async fn writer(
    store: RedisStore,
    workers: Vec<WorkerId>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0_usize;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let key = SessionKey::parse(format!("exam-{}", i % 5), format!("student-{i}")).unwrap();
        let worker = workers[i % workers.len()].clone();
        let request = request(&key, &worker, Timestamp(i as u64));
        let ok = match store.reserve(&request).await {
            Ok(Reservation::Reserved { dispatch, .. }) => {
                ledger.lock().unwrap().live.insert(key.clone(), dispatch.id);
                // The reservation is acknowledged; confirming may fail.
                store
                    .confirm(
                        &key,
                        dispatch.id,
                        None,
                        Timestamp(i as u64),
                        Duration::from_secs(60),
                        None,
                    )
                    .await
                    .is_ok()
            }
            Ok(other) => panic!("unexpected reservation outcome {other:?}"),
            Err(e) => {
                assert!(matches!(e, Error::Unavailable { .. }), "{e}");
                ledger.lock().unwrap().unknown.insert(key.clone());
                false
            }
        };
        // Release every third acknowledged session.
        let victim = i
            .is_multiple_of(3)
            .then(|| {
                ledger
                    .lock()
                    .unwrap()
                    .live
                    .iter()
                    .next()
                    .map(|(k, id)| (k.clone(), *id))
            })
            .flatten();
        let released_ok = match victim {
            None => true,
            Some((k, id)) => match store.release(&k, Some(id), None, None).await {
                Ok(Some(_)) => {
                    let mut l = ledger.lock().unwrap();
                    l.live.remove(&k);
                    l.released.insert(k);
                    true
                }
                Ok(None) => panic!("an acknowledged reservation of {k} vanished"),
                Err(_) => {
                    let mut l = ledger.lock().unwrap();
                    l.live.remove(&k);
                    l.unknown.insert(k);
                    false
                }
            },
        };
        let success = ok && released_ok;
        {
            let mut l = ledger.lock().unwrap();
            if success {
                l.acked += 1;
            } else {
                l.failed += 1;
            }
        }
        if !success {
            // Redis is away: do not spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn wait_for(ledger: &Mutex<Ledger>, what: impl Fn(&Ledger) -> bool) {
    for _ in 0..6000 {
        if what(&ledger.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer made no progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_a_kill_with_aof_always() {
    let Some(mut server) = PrivateRedis::start(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    let store = store_on(&server.url()).await;
    let workers: Vec<WorkerId> = (0..4).map(|i| wid(&format!("w-{i}"))).collect();
    for w in &workers {
        store
            .put_worker(&worker_record(w.as_str(), 10_000, 0), None)
            .await
            .unwrap();
    }

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(writer(
        store.clone(),
        workers.clone(),
        Arc::clone(&ledger),
        Arc::clone(&stop),
    ));
    wait_for(&ledger, |l| l.acked >= 150).await;

    server.kill();
    // Down: every kind of call fails with a typed error, within the
    // configured timeout (bounded here only to catch a hang).
    let probe = SessionKey::parse("exam-probe", "u").unwrap();
    let down = tokio::time::timeout(HANG, async {
        assert!(is_unavailable(&store.ping().await));
        assert!(is_unavailable(&store.worker(&workers[0]).await));
        assert!(is_unavailable(&store.dispatch(&probe).await));
        assert!(is_unavailable(&store.recount(false).await));
        assert!(is_unavailable(
            &store
                .try_acquire("jobs", "me", Duration::from_secs(1))
                .await
        ));
        assert!(is_unavailable(&store.recent_audit(1).await));
    })
    .await;
    assert!(down.is_ok(), "a call hung while Redis was down");
    let failed_before = ledger.lock().unwrap().failed;
    wait_for(&ledger, |l| l.failed > failed_before).await;

    server.restart();
    until_back(&store).await;
    let acked_before = ledger.lock().unwrap().acked;
    wait_for(&ledger, |l| l.acked >= acked_before + 50).await;
    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(HANG, task)
        .await
        .expect("writer stops")
        .unwrap();

    // A reconcile-style recount finds nothing to repair: every script's
    // effects were logged atomically before it was acknowledged.
    let report = store.recount(true).await.unwrap();
    assert!(
        report.drift.is_empty(),
        "drift after restart: {:?}",
        report.drift
    );
    assert!(store.recount(false).await.unwrap().drift.is_empty());

    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert!(ledger.failed > 0, "the kill was noticed");
    for (key, id) in &ledger.live {
        let d = store.dispatch(key).await.unwrap();
        assert_eq!(d.map(|d| d.id), Some(*id), "acknowledged {key} lost");
    }
    for key in &ledger.released {
        assert!(
            store.dispatch(key).await.unwrap().is_none(),
            "released {key} came back"
        );
    }
    // Counters equal the records, worker by worker.
    let mut per_worker: BTreeMap<WorkerId, u32> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.scan_dispatches(cursor.as_deref(), 500).await.unwrap();
        for d in page.dispatches {
            if seen.insert(d.key.clone()) {
                *per_worker.entry(d.worker).or_default() += 1;
            }
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    for key in ledger.live.keys() {
        assert!(seen.contains(key));
    }
    for w in &workers {
        let snap = store.worker(w).await.unwrap().expect("worker kept");
        let records = per_worker.get(w).copied().unwrap_or(0);
        assert_eq!(snap.dispatched, records, "counter of {w}");
        let listed = store.worker_dispatches(w, 100_000).await.unwrap();
        assert_eq!(listed.len() as u32, records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_persistence_the_handle_recovers_but_data_is_gone() {
    let Some(mut server) = PrivateRedis::start(&["--appendonly", "no"]) else {
        return;
    };
    let store = store_on(&server.url()).await;
    let w = worker_record("w-volatile", 4, 0);
    store.put_worker(&w, None).await.unwrap();

    server.kill();
    let down = tokio::time::timeout(HANG, store.worker(&w.id)).await;
    assert!(is_unavailable(&down.expect("no hang")));

    server.restart();
    until_back(&store).await;
    // Nothing was persisted: the registry starts empty (heartbeats refill
    // it), and the same handle writes again, scripts reloaded on demand.
    assert!(store.worker(&w.id).await.unwrap().is_none());
    store.put_worker(&w, None).await.unwrap();
    assert!(store.worker(&w.id).await.unwrap().is_some());
    assert!(store.recount(false).await.unwrap().drift.is_empty());
}
