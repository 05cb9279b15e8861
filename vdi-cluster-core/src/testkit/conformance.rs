//! The conformance suite: one set of behaviour and concurrency tests that
//! every backend runs against real storage.
//!
//! A backend implements [`StoreFactory`] (each call to
//! [`replica`](StoreFactory::replica) opens an independent handle — its own
//! connection or pool — on one shared, isolated storage namespace) and
//! expands [`conformance_tests!`](crate::conformance_tests) once in its
//! `tests/conformance.rs`:
//!
//! ```ignore
//! async fn factory() -> Option<MyFactory> { /* None: backend unreachable, skipped */ }
//! vdi_cluster_core::conformance_tests!(factory());
//! ```
//!
//! Every case then shows up by name in the test output.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::WorkerId;
use crate::store::Store;

/// Opens handles on one isolated storage namespace (a fresh database, a
/// random key prefix).
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// A new independent handle on the shared namespace: one replica.
    async fn replica(&self) -> Arc<dyn Store>;

    /// Adds `delta` to `worker`'s dispatched counter behind the store's
    /// back, to prove reconcile finds and repairs drift. `false` if the
    /// backend cannot.
    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        let _ = (worker, delta);
        false
    }

    /// Removes the namespace (drops the database, deletes the prefix's
    /// keys). Called once at the end of every case that passed.
    async fn cleanup(&self) {}
}

/// Expands to one `#[tokio::test]` per conformance case. The argument is
/// an expression evaluating to a future of `Option<impl StoreFactory>`,
/// evaluated afresh for every case (`None` skips the case).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            worker_put_is_compare_and_set,
        );
    };
    (@cases $factory:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(factory) = $factory.await else { return };
                $crate::testkit::conformance::$case(&factory).await;
                $crate::testkit::conformance::StoreFactory::cleanup(&factory).await;
            }
        )*
    };
}

/// `put_worker` writes only on the expected version and bumps it.
pub async fn worker_put_is_compare_and_set(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let hb = super::heartbeat_with_slots("w-cas", 4, 0);
    let record = crate::worker::WorkerRecord::registered(
        hb.worker.clone(),
        hb.description.clone(),
        crate::Timestamp(1),
    );
    use crate::store::CasOutcome;
    let v1 = match store.put_worker(&record, None).await.unwrap() {
        CasOutcome::Written { version } => version,
        other => panic!("insert failed: {other:?}"),
    };
    assert!(matches!(
        store.put_worker(&record, None).await.unwrap(),
        CasOutcome::Conflict { current: Some(v) } if v == v1
    ));
    let v2 = match store.put_worker(&record, Some(v1)).await.unwrap() {
        CasOutcome::Written { version } => version,
        other => panic!("update failed: {other:?}"),
    };
    assert!(v2 > v1);
    let snap = store.worker(&hb.worker).await.unwrap().unwrap();
    assert_eq!(snap.version, v2);
    assert_eq!(snap.record, record);
    assert_eq!(snap.dispatched, 0);
}
