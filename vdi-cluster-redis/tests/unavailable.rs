//! With nothing listening, every method of every trait fails with
//! `Error::Unavailable` — no panic, no hang.

use std::net::TcpListener;
use std::time::Duration;

use vdi_cluster_core::store::{AuditEntry, Lease, ReserveRequest};
use vdi_cluster_core::{
    AuditLog, Dispatch, DispatchId, DispatchStore, Error, ExamId, LeaderLease, Registry, Result,
    SessionKey, Timestamp, WorkerId, WorkerRecord,
};
use vdi_cluster_redis::RedisStore;

/// Catches a hang; nothing asserts on time.
const HANG: Duration = Duration::from_secs(60);

fn closed_port_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    // The listener is dropped: nothing accepts on this port.
    format!("redis://127.0.0.1:{port}")
}

fn unavailable<T: std::fmt::Debug>(what: &str, r: Result<T>) {
    assert!(
        matches!(r, Err(Error::Unavailable { .. })),
        "{what}: expected Unavailable, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_connect_fails_typed() {
    let r = tokio::time::timeout(HANG, RedisStore::connect(&closed_port_url())).await;
    unavailable("connect", r.expect("no hang"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_fails_typed_while_redis_is_away() {
    let store = RedisStore::builder(closed_port_url())
        .timeout(Duration::from_millis(300))
        .connection_timeout(Duration::from_millis(100))
        .connect_lazy()
        .expect("lazy handle needs no server");
    let w = WorkerId::parse("code", "w").unwrap();
    let k = SessionKey::parse("e", "u").unwrap();
    let record = WorkerRecord::registered(w.clone(), Default::default(), Timestamp(1));
    let lease = Lease {
        name: "jobs".into(),
        holder: "me".into(),
        token: 1,
    };
    let entry = AuditEntry {
        at: Timestamp(1),
        actor: "a".into(),
        action: "b".into(),
        target: "c".into(),
        detail: serde_json::Value::Null,
    };
    let request = ReserveRequest {
        dispatch: Dispatch::reserve(k.clone(), w.clone(), Timestamp(1), None, None),
        supersede: None,
        permit: None,
    };
    let exam = ExamId::parse("examId", "e").unwrap();
    let id = DispatchId::new();
    tokio::time::timeout(HANG, async {
        unavailable("ping", store.ping().await);
        unavailable("worker", store.worker(&w).await);
        unavailable("workers", store.workers().await);
        unavailable("put_worker", store.put_worker(&record, None).await);
        unavailable(
            "put_worker_if_dispatched",
            store.put_worker_if_dispatched(&record, 1, 0).await,
        );
        unavailable("delete_worker", store.delete_worker(&w, 1).await);
        unavailable("reserve", store.reserve(&request).await);
        unavailable(
            "confirm",
            store
                .confirm(&k, id, None, Timestamp(1), Duration::from_secs(1), None)
                .await,
        );
        unavailable("undo", store.undo(&k, id, None, None, None).await);
        unavailable("release", store.release(&k, None, None, None).await);
        unavailable("mark_orphaned", store.mark_orphaned(&k, id, None).await);
        unavailable("dispatch", store.dispatch(&k).await);
        unavailable("worker_dispatches", store.worker_dispatches(&w, 10).await);
        unavailable("scan_dispatches", store.scan_dispatches(None, 10).await);
        unavailable("placement", store.placement(&exam, Timestamp(1)).await);
        unavailable("recount", store.recount(true).await);
        unavailable(
            "try_acquire",
            store
                .try_acquire("jobs", "me", Duration::from_secs(1))
                .await,
        );
        unavailable("release_lease", store.release_lease(&lease).await);
        unavailable("append_audit", store.append_audit(&entry).await);
        unavailable("recent_audit", store.recent_audit(5).await);
    })
    .await
    .expect("no call hangs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cursor_is_invalid_input_not_unavailability() {
    let store = RedisStore::builder(closed_port_url())
        .connect_lazy()
        .unwrap();
    let err = store
        .scan_dispatches(Some("not-a-cursor"), 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref v) if v.field == "cursor"),
        "{err}"
    );
}
