//! Cases of [`LeaderLease`](crate::store::LeaderLease): one holder, fenced
//! tokens, expiry.

use std::time::Duration;

use super::StoreFactory;

/// One holder at a time; renewal keeps the token; a stale lease cannot be
/// released; expiry frees it.
pub async fn lease_is_exclusive_and_fenced(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let ttl = Duration::from_secs(30);
    let la = a
        .try_acquire("jobs", "replica-a", ttl)
        .await
        .unwrap()
        .expect("a acquires");
    assert!(
        b.try_acquire("jobs", "replica-b", ttl)
            .await
            .unwrap()
            .is_none()
    );
    let renewed = a
        .try_acquire("jobs", "replica-a", ttl)
        .await
        .unwrap()
        .expect("a renews");
    assert_eq!(renewed.token, la.token);
    assert!(
        b.try_acquire("other", "replica-b", ttl)
            .await
            .unwrap()
            .is_some()
    );
    let forged = crate::store::Lease {
        holder: "replica-b".into(),
        ..la.clone()
    };
    assert!(!b.release_lease(&forged).await.unwrap());
    assert!(a.release_lease(&la).await.unwrap());
    let lb = b
        .try_acquire("jobs", "replica-b", ttl)
        .await
        .unwrap()
        .expect("b acquires");
    assert!(
        lb.token > la.token,
        "a new holder gets a larger fencing token"
    );
    assert!(!a.release_lease(&la).await.unwrap(), "a lost the lease");
    assert!(
        a.try_acquire("jobs", "replica-a", ttl)
            .await
            .unwrap()
            .is_none()
    );

    let short = a
        .try_acquire("short", "replica-a", Duration::from_millis(100))
        .await
        .unwrap()
        .expect("a acquires");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = b
        .try_acquire("short", "replica-b", ttl)
        .await
        .unwrap()
        .expect("expired lease is free");
    assert!(taken.token > short.token);
}
