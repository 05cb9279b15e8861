//! Cases of [`Credentials`](crate::store::Credentials): join tokens and
//! worker credentials.

use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::error::Error;
use crate::time::Timestamp;

pub(super) fn join_token(
    id: &str,
    hash: &str,
    max_uses: u32,
    expires_at: Timestamp,
) -> crate::store::JoinToken {
    crate::store::JoinToken {
        id: id.into(),
        token_hash: hash.into(),
        created_by: "admin".into(),
        created_at: Timestamp(expires_at.0.saturating_sub(60_000)),
        expires_at,
        max_uses,
        uses: 0,
        worker: None,
    }
}

/// Join tokens: unique, redeemed at most `max_uses` times even by racing
/// replicas, refused once expired or revoked.
pub async fn join_tokens_are_redeemed_atomically(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t0 = now();
    let later = t0.plus(Duration::from_secs(3600));
    store
        .put_join_token(&join_token("jt-1", "hash-1", 3, later))
        .await
        .unwrap();
    store
        .put_join_token(&join_token("jt-2", "hash-2", 1, t0))
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_join_token(&join_token("jt-1", "hash-9", 1, later))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store
            .put_join_token(&join_token("jt-9", "hash-1", 1, later))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.join_tokens().await.unwrap().len(), 2);
    // Expired at `now`, or unknown: refused.
    assert!(
        store
            .redeem_join_token("hash-2", t0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.redeem_join_token("nope", t0).await.unwrap().is_none());
    // Twelve replicas race for three uses.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let s = factory.replica().await;
        tasks.push(tokio::spawn(async move {
            s.redeem_join_token("hash-1", t0).await
        }));
    }
    let mut granted = Vec::new();
    for t in tasks {
        if let Some(token) = t.await.unwrap().unwrap() {
            granted.push(token.uses);
        }
    }
    granted.sort_unstable();
    assert_eq!(granted, vec![1, 2, 3]);
    let stored = store.join_tokens().await.unwrap();
    let jt1 = stored.iter().find(|t| t.id == "jt-1").unwrap();
    assert_eq!(
        (jt1.uses, jt1.max_uses, jt1.token_hash.as_str()),
        (3, 3, "hash-1")
    );
    assert!(store.revoke_join_token("jt-2").await.unwrap());
    assert!(!store.revoke_join_token("jt-2").await.unwrap());
    assert_eq!(store.join_tokens().await.unwrap().len(), 1);
}
