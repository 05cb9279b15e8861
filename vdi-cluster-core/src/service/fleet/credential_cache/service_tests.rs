//! The credential cache as the fleet uses it: two replicas over one store,
//! on a clock the tests move.

use std::sync::Arc;
use std::time::Duration;

use crate::MemoryStore;
use crate::credential::{CredentialCheck, IssuedSecret, Presented, WorkerCredential};
use crate::ids::WorkerId;
use crate::service::{ClusterService, RotateOutcome, ServiceConfig};
use crate::store::Store;
use crate::testkit::{SimulatedWorkers, heartbeat_with_slots};
use crate::time::{ManualClock, Timestamp};

const CACHE: Duration = Duration::from_secs(2);

struct Replicas {
    store: Arc<dyn Store>,
    clock: ManualClock,
    a: ClusterService,
    b: ClusterService,
}

fn replicas(cache: Duration) -> Replicas {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let replica = || {
        ClusterService::builder(Arc::clone(&store), Arc::new(SimulatedWorkers::new()))
            .clock(Arc::new(clock.clone()))
            .config(ServiceConfig {
                credential_cache: cache,
                ..ServiceConfig::default()
            })
            .build()
    };
    let (a, b) = (replica(), replica());
    Replicas { store, clock, a, b }
}

fn w() -> WorkerId {
    WorkerId::parse("code", "w-cache").unwrap()
}

impl Replicas {
    async fn issue(&self, hash: &str) {
        let now = self.clock.now_at();
        let credential =
            WorkerCredential::issued(IssuedSecret::new(hash, now, Duration::from_secs(3600)));
        self.store
            .put_worker_credential(&w(), &credential, None)
            .await
            .unwrap();
    }
}

async fn check(service: &ClusterService, hash: &str) -> CredentialCheck {
    service
        .fleet()
        .check_credential(&w(), |h| h == hash)
        .await
        .unwrap()
}

trait Now {
    fn now_at(&self) -> Timestamp;
}

impl Now for ManualClock {
    fn now_at(&self) -> Timestamp {
        crate::time::Clock::now(self)
    }
}

#[tokio::test]
async fn a_revocation_through_this_replica_holds_from_the_next_request() {
    let r = replicas(CACHE);
    r.issue("s0").await;
    assert_eq!(
        check(&r.a, "s0").await,
        CredentialCheck::Valid(Presented::Current)
    );
    assert!(r.a.fleet().revoke_credential(&w(), "admin").await.unwrap());
    assert_eq!(check(&r.a, "s0").await, CredentialCheck::Revoked);
}

#[tokio::test]
async fn a_revocation_through_another_replica_holds_within_the_cache_time() {
    let r = replicas(CACHE);
    r.issue("s0").await;
    assert_eq!(
        check(&r.a, "s0").await,
        CredentialCheck::Valid(Presented::Current)
    );
    assert!(r.b.fleet().revoke_credential(&w(), "admin").await.unwrap());
    // The documented bound: replica a accepts from its memory of the
    // credential no longer than the cache time after its read.
    r.clock.advance(CACHE - Duration::from_millis(1));
    assert_eq!(
        check(&r.a, "s0").await,
        CredentialCheck::Valid(Presented::Current)
    );
    r.clock.advance(Duration::from_millis(1));
    assert_eq!(check(&r.a, "s0").await, CredentialCheck::Revoked);
    // And a refusal is never answered from memory alone.
    assert_eq!(check(&r.a, "s0").await, CredentialCheck::Revoked);
}

#[tokio::test]
async fn without_the_cache_a_revocation_elsewhere_holds_at_once() {
    let r = replicas(Duration::ZERO);
    r.issue("s0").await;
    assert_eq!(
        check(&r.a, "s0").await,
        CredentialCheck::Valid(Presented::Current)
    );
    assert!(r.b.fleet().revoke_credential(&w(), "admin").await.unwrap());
    assert_eq!(check(&r.a, "s0").await, CredentialCheck::Revoked);
}

#[tokio::test]
async fn a_secret_rotated_through_another_replica_is_accepted_at_once() {
    let r = replicas(CACHE);
    r.issue("s0").await;
    assert_eq!(
        check(&r.a, "s0").await,
        CredentialCheck::Valid(Presented::Current)
    );
    let rotated =
        r.b.fleet()
            .rotate_credential(&w(), &|h: &str| h == "s0", "s1")
            .await
            .unwrap();
    assert!(matches!(rotated, RotateOutcome::Rotated(_)), "{rotated:?}");
    // Replica a remembers only s0: s1 matches nothing there, so it reads
    // again instead of refusing.
    assert_eq!(
        check(&r.a, "s1").await,
        CredentialCheck::Valid(Presented::Current)
    );
    assert_eq!(
        check(&r.a, "s0").await,
        CredentialCheck::Valid(Presented::Previous)
    );
}

#[tokio::test]
async fn the_shared_token_is_refused_once_a_reset_reaches_each_replica() {
    let r = replicas(CACHE);
    let (fleet_a, fleet_b) = (r.a.fleet(), r.b.fleet());
    fleet_a
        .heartbeat(heartbeat_with_slots("w-cache", 4, 0))
        .await
        .unwrap();
    let w2 = WorkerId::parse("code", "w-cache-2").unwrap();
    fleet_a
        .heartbeat(heartbeat_with_slots("w-cache-2", 4, 0))
        .await
        .unwrap();
    // Both replicas remember both workers without a credential of their own.
    for fleet in [fleet_a, fleet_b] {
        assert!(!fleet.has_own_credential(&w()).await.unwrap());
        assert!(!fleet.has_own_credential(&w2).await.unwrap());
    }
    // A reset through replica a: refused there from the next request on,
    // on replica b within the cache time.
    fleet_a.reset_credential(&w(), "admin").await.unwrap();
    assert!(fleet_a.has_own_credential(&w()).await.unwrap());
    assert!(!fleet_b.has_own_credential(&w()).await.unwrap());
    r.clock.advance(CACHE);
    assert!(fleet_b.has_own_credential(&w()).await.unwrap());
    // Once it has one, the answer is read every time, never remembered.
    assert!(fleet_a.has_own_credential(&w()).await.unwrap());
    // The other worker was never reset: still accepted on both.
    assert!(!fleet_a.has_own_credential(&w2).await.unwrap());
    assert!(!fleet_b.has_own_credential(&w2).await.unwrap());
}
