//! Confirmations on one store handle are written together (one statement,
//! one commit) when they arrive together: each caller still gets its own
//! answer, and only once that answer is committed.

mod common;

use std::time::Duration;

use futures::future::join_all;
use vdi_cluster_core::store::{DispatchStore, Reservation};
use vdi_cluster_core::testkit::{assert_no_drift, key, request, worker_record};
use vdi_cluster_core::{DispatchId, DispatchState, Timestamp};

use common::{TestDb, register};

const STICKY: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_confirmations_each_answer_for_themselves() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    let w = worker_record("w-batch", 500, 0);
    register(&store, &w).await;
    let mut reserved = Vec::new();
    for i in 0..300 {
        // Three exams: confirmations of one exam share its sticky row.
        let k = key(&format!("exam-{}", i % 3), &format!("u-{i}"));
        match store.reserve(&request(&k, &w.id, Timestamp(10))).await {
            Ok(Reservation::Reserved { dispatch, .. }) => reserved.push(dispatch),
            other => panic!("reserve {k}: {other:?}"),
        }
    }
    // All at once: every third with a stale id, which confirms nothing.
    let answers = join_all(reserved.iter().enumerate().map(|(i, d)| {
        let store = store.clone();
        let id = if i % 3 == 0 { DispatchId::new() } else { d.id };
        let session = serde_json::json!({ "n": i });
        async move {
            store
                .confirm(&d.key, id, Some(session), Timestamp(20), STICKY, None)
                .await
        }
    }))
    .await;
    for (i, (d, answer)) in reserved.iter().zip(answers).enumerate() {
        let answer = answer.unwrap_or_else(|e| panic!("confirm {}: {e}", d.key));
        let stored = store.dispatch(&d.key).await.unwrap().unwrap();
        if i % 3 == 0 {
            assert!(answer.is_none(), "{}: a stale id confirms nothing", d.key);
            assert_eq!(stored.state, DispatchState::Reserved);
        } else {
            let confirmed = answer.unwrap_or_else(|| panic!("{} not confirmed", d.key));
            assert_eq!(
                (confirmed.id, confirmed.state),
                (d.id, DispatchState::Active)
            );
            assert_eq!(confirmed.session, Some(serde_json::json!({ "n": i })));
            assert_eq!(stored, confirmed, "the answer is what was committed");
        }
    }
    assert_no_drift(&store).await;
    db.cleanup().await;
}
