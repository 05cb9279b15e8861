//! Cases of the operators' page sessions of
//! [`Credentials`](crate::store::Credentials).

use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::operator_session::OperatorSession;
use crate::time::Timestamp;

fn session(sub: &str, created_at: Timestamp, ttl: Duration) -> OperatorSession {
    OperatorSession {
        sub: sub.into(),
        roles: vec!["ADMIN".into()],
        created_at,
        expires_at: created_at.plus(ttl),
    }
}

/// A session is answered on every replica until it expires or is ended on
/// any of them; ending every session ends the others' too.
pub async fn operator_sessions_end_on_every_replica(factory: &impl StoreFactory) {
    let (a, b) = (factory.replica().await, factory.replica().await);
    let t0 = now();
    let hour = Duration::from_secs(3600);
    let first = session("ops-1", t0, hour);
    a.put_operator_session("hash-1", &first).await.unwrap();
    assert_eq!(
        b.operator_session("hash-1", t0).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(b.operator_session("hash-9", t0).await.unwrap(), None);
    // Expired: never answered, though still stored.
    let expiry = first.expires_at;
    assert_eq!(a.operator_session("hash-1", expiry).await.unwrap(), None);

    // Signed out on one replica: gone on the other.
    assert!(b.end_operator_session("hash-1").await.unwrap());
    assert!(!b.end_operator_session("hash-1").await.unwrap());
    assert_eq!(a.operator_session("hash-1", t0).await.unwrap(), None);

    // Sign out everywhere.
    for (i, replica) in [&a, &b, &a].into_iter().enumerate() {
        let s = session(&format!("ops-{i}"), t0, hour);
        replica
            .put_operator_session(&format!("hash-all-{i}"), &s)
            .await
            .unwrap();
    }
    assert_eq!(b.end_operator_sessions().await.unwrap(), 3);
    for i in 0..3 {
        let hash = format!("hash-all-{i}");
        assert_eq!(a.operator_session(&hash, t0).await.unwrap(), None);
    }
    assert_eq!(a.end_operator_sessions().await.unwrap(), 0);

    // A sign-in may forget sessions that expired: never one that is live.
    a.put_operator_session("short", &session("ops", t0, Duration::from_secs(1)))
        .await
        .unwrap();
    let later = t0.plus(Duration::from_secs(2));
    let live = session("ops", later, hour);
    b.put_operator_session("long", &live).await.unwrap();
    assert_eq!(a.operator_session("long", later).await.unwrap(), Some(live));
    assert_eq!(a.operator_session("short", later).await.unwrap(), None);
}
