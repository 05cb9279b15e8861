//! Cases of [`LeaderLease`](crate::store::LeaderLease): one holder, fenced
//! tokens, expiry, and the writes fenced by a lease.

use std::time::Duration;

use super::StoreFactory;
use super::fixtures::{STICKY, add_worker, dispatched, now, reserved};
use crate::dispatch::DispatchState;
use crate::error::Error;
use crate::testkit::{assert_no_drift, key};

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

fn is_fenced<T: std::fmt::Debug>(what: &str, result: crate::Result<T>) {
    assert!(
        matches!(result, Err(Error::Fenced { .. })),
        "{what}: a stale lease's write must be refused, got {result:?}"
    );
}

/// A write fenced by a lease another holder has taken since (after it
/// expired, or after it was given up) is refused and changes nothing; the
/// current holder's fenced writes succeed.
pub async fn stale_fence_is_refused_and_current_fence_writes(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let w = add_worker(&a, "w-fence", 4).await;
    let (k1, k2, k3) = (
        key("e-fence", "u1"),
        key("e-fence", "u2"),
        key("e-fence", "u3"),
    );
    let d1 = reserved(&a, &k1, &w).await;
    let d2 = reserved(&a, &k2, &w).await;
    let d3 = reserved(&a, &k3, &w).await;
    a.confirm(&k3, d3.id, None, now(), STICKY, None)
        .await
        .unwrap()
        .unwrap();

    let stale = a
        .try_acquire("fence", "replica-a", Duration::from_millis(100))
        .await
        .unwrap()
        .expect("a acquires");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Expired, not yet taken: already refused.
    is_fenced(
        "undo after expiry",
        a.undo(&k1, d1.id, Some(&stale), None, None).await,
    );
    let current = b
        .try_acquire("fence", "replica-b", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("b takes the expired lease");
    assert!(current.token > stale.token);

    is_fenced("undo", a.undo(&k1, d1.id, Some(&stale), None, None).await);
    is_fenced(
        "release",
        a.release(&k2, Some(d2.id), Some(&stale), None).await,
    );
    is_fenced(
        "release any",
        a.release(&k2, None, Some(&stale), None).await,
    );
    is_fenced(
        "mark_orphaned",
        a.mark_orphaned(&k3, d3.id, Some(&stale)).await,
    );
    // A forged lease with the current token but another holder, or the
    // current holder with a stale token, is refused too.
    let forged = crate::store::Lease {
        holder: "replica-a".into(),
        ..current.clone()
    };
    is_fenced(
        "forged holder",
        a.release(&k2, None, Some(&forged), None).await,
    );
    let old_token = crate::store::Lease {
        token: stale.token,
        ..current.clone()
    };
    is_fenced(
        "old token",
        a.release(&k2, None, Some(&old_token), None).await,
    );
    // Nothing changed.
    for (k, d) in [(&k1, &d1), (&k2, &d2)] {
        assert_eq!(a.dispatch(k).await.unwrap().map(|x| x.id), Some(d.id));
    }
    assert_eq!(
        a.dispatch(&k3).await.unwrap().unwrap().state,
        DispatchState::Active
    );
    assert_eq!(dispatched(&a, &w).await, 3);

    // The current holder's writes succeed, from any handle.
    assert!(
        b.undo(&k1, d1.id, Some(&current), None, None)
            .await
            .unwrap()
    );
    assert!(a.mark_orphaned(&k3, d3.id, Some(&current)).await.unwrap());
    assert_eq!(
        b.release(&k2, Some(d2.id), Some(&current), None)
            .await
            .unwrap()
            .map(|d| d.id),
        Some(d2.id)
    );
    assert_eq!(dispatched(&a, &w).await, 1);

    // Given up: its own holder's fenced writes are refused from then on.
    assert!(b.release_lease(&current).await.unwrap());
    is_fenced(
        "after release",
        b.release(&k3, None, Some(&current), None).await,
    );
    assert_eq!(
        a.dispatch(&k3).await.unwrap().unwrap().state,
        DispatchState::Orphaned
    );
    assert!(a.release(&k3, None, None, None).await.unwrap().is_some());
    assert_no_drift(&*a).await;
}

/// Renewal keeps the token: a lease renewed past its first expiry still
/// fences writes in, under the value taken at the first acquisition.
pub async fn renewal_keeps_the_fence(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let w = add_worker(&a, "w-renew", 2).await;
    let k = key("e-renew", "u1");
    let d = reserved(&a, &k, &w).await;
    let ttl = Duration::from_millis(600);
    let first = a
        .try_acquire("renew", "replica-a", ttl)
        .await
        .unwrap()
        .expect("a acquires");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let renewed = a
            .try_acquire("renew", "replica-a", ttl)
            .await
            .unwrap()
            .expect("a renews");
        assert_eq!(renewed, first, "renewal keeps holder and token");
        assert!(
            b.try_acquire("renew", "replica-b", ttl)
                .await
                .unwrap()
                .is_none()
        );
    }
    // Past the first acquisition's expiry, but renewed: still fenced in.
    assert!(a.mark_orphaned(&k, d.id, Some(&first)).await.unwrap());
    assert_eq!(
        b.release(&k, Some(d.id), Some(&first), None)
            .await
            .unwrap()
            .map(|x| x.id),
        Some(d.id)
    );
    assert_no_drift(&*a).await;
}
