//! Cases of workers' own credentials: the versioned compare-and-set, the
//! atomic join claim, and the races the lifecycle must survive.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::credentials::join_token;
use super::fixtures::now;
use crate::credential::{CredentialCheck, CredentialState, IssuedSecret, WorkerCredential};
use crate::service::{ClusterService, RotateOutcome};
use crate::store::{CasOutcome, ClaimOutcome, JoinClaim, Store};
use crate::testkit::{SimulatedWorkers, wid};
use crate::time::Timestamp;

fn issued(hash: &str, at: Timestamp) -> WorkerCredential {
    WorkerCredential::issued(IssuedSecret::new(hash, at, Duration::from_secs(3600)))
}

fn claim(
    hash: &str,
    worker: &str,
    credential: WorkerCredential,
    expected: Option<u64>,
) -> JoinClaim {
    JoinClaim {
        token_hash: hash.into(),
        now: now(),
        worker: wid(worker),
        credential,
        expected,
        bound_only: false,
    }
}

/// Worker credentials are written by compare-and-set on their version,
/// read back whole (with the secret a rotation kept) by other replicas.
pub async fn worker_credentials_are_compare_and_set(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = wid("w-cred");
    let t0 = now();
    assert!(store.worker_credential(&w).await.unwrap().is_none());
    let first = issued("cred-1", t0);
    assert_eq!(
        store
            .put_worker_credential(&w, &first, Some(3))
            .await
            .unwrap(),
        CasOutcome::Conflict { current: None }
    );
    assert_eq!(
        store.put_worker_credential(&w, &first, None).await.unwrap(),
        CasOutcome::Written { version: 1 }
    );
    assert_eq!(
        store.put_worker_credential(&w, &first, None).await.unwrap(),
        CasOutcome::Conflict { current: Some(1) }
    );
    let mut rotated = issued("cred-2", t0);
    rotated.previous = first.current.clone();
    assert_eq!(
        store
            .put_worker_credential(&w, &rotated, Some(1))
            .await
            .unwrap(),
        CasOutcome::Written { version: 2 }
    );
    let other = factory.replica().await;
    let read = other.worker_credential(&w).await.unwrap().unwrap();
    assert_eq!((read.credential, read.version), (rotated, 2));
    assert!(
        other
            .worker_credential(&wid("w-other"))
            .await
            .unwrap()
            .is_none()
    );

    // Twelve replicas write from one version: one wins.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = factory.replica().await;
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let c = if i % 2 == 0 {
                WorkerCredential::revoked()
            } else {
                issued(&format!("r{i}"), t0)
            };
            s.put_worker_credential(&w, &c, Some(2)).await.unwrap()
        }));
    }
    let mut written = 0;
    for t in tasks {
        if let CasOutcome::Written { version } = t.await.unwrap() {
            assert_eq!(version, 3);
            written += 1;
        }
    }
    assert_eq!(written, 1);
}

/// A join claim counts the token's use and writes the credential in one
/// step, or changes nothing: tokens bound to another code, unbound tokens
/// when a bound one is required, expired or used-up tokens and a stale
/// version all leave both untouched.
pub async fn join_claims_are_atomic_and_scoped(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t0 = now();
    let later = t0.plus(Duration::from_secs(3600));
    store
        .put_join_token(&join_token("open", "h-open", 5, later))
        .await
        .unwrap();
    let mut bound = join_token("bound", "h-bound", 5, later);
    bound.worker = Some(wid("w-b"));
    store.put_join_token(&bound).await.unwrap();
    store
        .put_join_token(&join_token("old", "h-old", 5, t0))
        .await
        .unwrap();
    let uses = |id: &'static str| {
        let store = Arc::clone(&store);
        async move {
            let all = store.join_tokens().await.unwrap();
            all.iter().find(|t| t.id == id).unwrap().uses
        }
    };

    // Unknown and expired tokens.
    let refused = store
        .claim_worker(&claim("nope", "w-a", issued("c", t0), None))
        .await
        .unwrap();
    assert_eq!(refused, ClaimOutcome::TokenRefused { token: None });
    match store
        .claim_worker(&claim("h-old", "w-a", issued("c", t0), None))
        .await
        .unwrap()
    {
        ClaimOutcome::TokenRefused { token: Some(t) } => {
            assert_eq!((t.id.as_str(), t.uses), ("old", 0))
        }
        other => panic!("expired token: {other:?}"),
    }
    // A token bound to w-b refuses w-a, with the stored token.
    match store
        .claim_worker(&claim("h-bound", "w-a", issued("c", t0), None))
        .await
        .unwrap()
    {
        ClaimOutcome::TokenRefused { token: Some(t) } => assert_eq!(t.worker, Some(wid("w-b"))),
        other => panic!("bound elsewhere: {other:?}"),
    }
    // An unbound token when only a bound one may be used.
    let mut strict = claim("h-open", "w-a", issued("c", t0), None);
    strict.bound_only = true;
    assert!(matches!(
        store.claim_worker(&strict).await.unwrap(),
        ClaimOutcome::TokenRefused { token: Some(_) }
    ));
    assert!(
        store
            .worker_credential(&wid("w-a"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(uses("open").await, 0);

    // A new code with the open token.
    match store
        .claim_worker(&claim("h-open", "w-a", issued("c-a", t0), None))
        .await
        .unwrap()
    {
        ClaimOutcome::Claimed { token, version } => assert_eq!((token.uses, version), (1, 1)),
        other => panic!("claim: {other:?}"),
    }
    // Claiming it again expecting no credential: conflict, no use counted.
    assert_eq!(
        store
            .claim_worker(&claim("h-open", "w-a", issued("c-x", t0), None))
            .await
            .unwrap(),
        ClaimOutcome::Conflict { current: Some(1) }
    );
    assert_eq!(uses("open").await, 1);
    let stored = store.worker_credential(&wid("w-a")).await.unwrap().unwrap();
    assert_eq!(stored.credential, issued("c-a", t0));

    // A reset worker re-joins with its bound token, strictly.
    store
        .put_worker_credential(&wid("w-b"), &WorkerCredential::reset(), None)
        .await
        .unwrap();
    let mut rejoin = claim("h-bound", "w-b", issued("c-b", t0), Some(1));
    rejoin.bound_only = true;
    match store.claim_worker(&rejoin).await.unwrap() {
        ClaimOutcome::Claimed { token, version } => assert_eq!((token.uses, version), (1, 2)),
        other => panic!("re-join: {other:?}"),
    }
    let b = store.worker_credential(&wid("w-b")).await.unwrap().unwrap();
    assert_eq!(b.credential.state, CredentialState::Active);

    // Twelve replicas join one new code at once: exactly one wins, and
    // exactly one use is counted.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = factory.replica().await;
        tasks.push(tokio::spawn(async move {
            s.claim_worker(&claim(
                "h-open",
                "w-race",
                issued(&format!("c{i}"), t0),
                None,
            ))
            .await
            .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            ClaimOutcome::Claimed { .. } => winners += 1,
            ClaimOutcome::Conflict { current } => assert_eq!(current, Some(1)),
            other => panic!("race: {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(uses("open").await, 2);
}

fn service(store: Arc<dyn Store>) -> ClusterService {
    ClusterService::builder(store, Arc::new(SimulatedWorkers::new()))
        .events(Arc::new(crate::events::RecordingSink::default()))
        .build()
}

/// Rotations racing a revocation on other replicas: whoever wins each
/// compare-and-set, the end state accepts no secret — never a revoked
/// credential beside a usable one — and every rotation that reported
/// success issued a secret that is now refused.
pub async fn rotation_racing_revocation_never_leaves_a_usable_secret(factory: &impl StoreFactory) {
    for round in 0..4 {
        let w = wid(&format!("w-rr-{round}"));
        let store = factory.replica().await;
        let t0 = now();
        store
            .put_worker_credential(&w, &issued("s0", t0), None)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let svc = service(factory.replica().await);
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let next = format!("s{round}-{i}");
                let outcome = svc
                    .fleet()
                    .rotate_credential(&w, &|h: &str| h == "s0", &next)
                    .await
                    .unwrap();
                (next, outcome)
            }));
        }
        let revoker = service(factory.replica().await);
        let revoked = revoker
            .fleet()
            .revoke_credential(&w, "admin")
            .await
            .unwrap();
        assert!(revoked);
        let checker = service(factory.replica().await);
        for t in tasks {
            let (next, outcome) = t.await.unwrap();
            if let RotateOutcome::Refused(check) = outcome {
                assert_eq!(check, CredentialCheck::Revoked, "round {round}");
            }
            let check = checker
                .fleet()
                .check_credential(&w, |h| h == next)
                .await
                .unwrap();
            assert_eq!(check, CredentialCheck::Revoked, "round {round}");
        }
        let stored = store.worker_credential(&w).await.unwrap().unwrap();
        assert_eq!(stored.credential, WorkerCredential::revoked());
    }
}
