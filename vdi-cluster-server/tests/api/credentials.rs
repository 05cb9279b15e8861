//! Join tokens bound to intent and the lifecycle of workers' own
//! credentials: no takeover by joining, tokens bound to one code, reset
//! and re-join, revocation on the next request, rotation with an overlap.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::credential::CredentialPolicy;
use vdi_cluster_core::{Clock, ManualClock, SystemClock};

use crate::common::{Cred, Reply, Setup, TestServer, WORKER_TOKEN, slots_heartbeat};

async fn token(s: &TestServer, body: Value) -> String {
    let created = s
        .send(
            Method::POST,
            "/api/vdi/join-tokens",
            &Cred::Admin,
            Some(&body),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["token"].as_str().unwrap().to_owned()
}

async fn join(s: &TestServer, token: &str, code: &str, url: &str) -> Reply {
    Reply::from(
        s.request(Method::POST, "/api/vdi/workers/join")
            .header("x-join-token", token)
            .json(&json!({"code": code, "apiBaseUrl": url}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn heartbeat(s: &TestServer, credential: &str, code: &str) -> Reply {
    Reply::from(
        s.request(Method::POST, "/api/vdi/workers/heartbeat")
            .header("x-worker-token", credential)
            .json(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn rotate(s: &TestServer, credential: Option<&str>, code: &str) -> Reply {
    let mut req = s.request(
        Method::POST,
        &format!("/api/vdi/workers/{code}/credential/rotate"),
    );
    if let Some(c) = credential {
        req = req.header("x-worker-token", c);
    }
    Reply::from(req.send().await.unwrap()).await
}

fn credential_of(r: &Reply) -> String {
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    r.json["credential"].as_str().unwrap().to_owned()
}

async fn uses(s: &TestServer) -> Vec<u64> {
    let listed = s.get("/api/vdi/join-tokens").await;
    listed.json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uses"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_join_token_cannot_take_over_an_existing_worker() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let open = token(&s, json!({"maxUses": 5})).await;
    let first = join(&s, &open, "w-1", "http://10.0.0.1:7000").await;
    let credential = credential_of(&first);
    assert!(first.json["expiresAt"].as_u64().unwrap() > 0);
    assert_eq!(first.json["ttlSec"], 30 * 24 * 3600);

    // The same code again: refused, nothing changes.
    let again = join(&s, &open, "w-1", "http://10.6.6.6:7000").await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert!(
        again.error_message().contains("already registered"),
        "{}",
        again.text
    );
    assert_eq!(uses(&s).await, vec![1]);
    assert_eq!(s.worker("w-1").await["apiBaseUrl"], "http://10.0.0.1:7000");
    assert_eq!(heartbeat(&s, &credential, "w-1").await.status, 200);

    // A worker registered with the shared token: a join cannot claim it.
    let shared = s
        .heartbeat(&slots_heartbeat("w-shared", "http://10.0.0.2:7000", 4, 0))
        .await;
    assert_eq!(shared.status, 200);
    assert_eq!(
        join(&s, &open, "w-shared", "http://10.6.6.6:7000")
            .await
            .status,
        409
    );

    // Two joins for one new code at once: exactly one wins, one use counted.
    let (a, b) = tokio::join!(
        join(&s, &open, "w-race", "http://10.0.0.3:7000"),
        join(&s, &open, "w-race", "http://10.6.6.6:7000"),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.text, b.text);
    let winner = if a.status == 201 { &a } else { &b };
    let url = if a.status == 201 {
        "http://10.0.0.3:7000"
    } else {
        "http://10.6.6.6:7000"
    };
    assert_eq!(s.worker("w-race").await["apiBaseUrl"], url);
    assert_eq!(
        heartbeat(&s, &credential_of(winner), "w-race").await.status,
        200
    );
    assert_eq!(uses(&s).await, vec![2]);
}

#[tokio::test]
async fn a_bound_token_joins_only_its_worker() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    for (body, field) in [
        (json!({"code": "bad code"}), "code"),
        (json!({"code": "summary"}), "code"),
        (json!({"code": ""}), "code"),
    ] {
        let r = s
            .send(
                Method::POST,
                "/api/vdi/join-tokens",
                &Cred::Admin,
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.json["field"], field);
    }
    let bound = token(&s, json!({"code": "w-b", "maxUses": 3})).await;
    let listed = s.get("/api/vdi/join-tokens").await;
    assert_eq!(listed.json["tokens"][0]["code"], "w-b");

    let elsewhere = join(&s, &bound, "w-x", "http://10.0.0.1:7000").await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text);
    assert!(elsewhere.error_message().contains("bound to worker w-b"));
    assert_eq!(uses(&s).await, vec![0]);
    let joined = join(&s, &bound, "w-b", "http://10.0.0.1:7000").await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    // Bound, but the worker now has a live credential: no takeover either.
    assert_eq!(
        join(&s, &bound, "w-b", "http://10.6.6.6:7000").await.status,
        409
    );
    assert_eq!(uses(&s).await, vec![1]);
}

#[tokio::test]
async fn an_admin_reset_lets_a_worker_join_again() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let open = token(&s, json!({"maxUses": 5})).await;
    let old = credential_of(&join(&s, &open, "w-r", "http://10.0.0.1:7000").await);
    assert_eq!(heartbeat(&s, &old, "w-r").await.status, 200);

    let path = "/api/vdi/workers/w-r/credential/reset";
    assert_eq!(
        s.send(Method::POST, path, &Cred::Proctor, None)
            .await
            .status,
        403
    );
    let missing = s
        .send(
            Method::POST,
            "/api/vdi/workers/w-none/credential/reset",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    let reset = s.send(Method::POST, path, &Cred::Admin, None).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(reset.json["code"], "w-r");
    assert_eq!(reset.json["joinToken"]["code"], "w-r");
    assert_eq!(reset.json["joinToken"]["maxUses"], 1);
    let rejoin_token = reset.json["joinToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Nothing the worker held is accepted; an unbound token cannot re-join.
    let refused = heartbeat(&s, &old, "w-r").await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.error_message().contains("reset"),
        "{}",
        refused.text
    );
    let unbound = join(&s, &open, "w-r", "http://10.6.6.6:7000").await;
    assert_eq!(unbound.status, 403, "{}", unbound.text);

    let rejoined = join(&s, &rejoin_token, "w-r", "http://10.0.0.9:7000").await;
    let new = credential_of(&rejoined);
    assert_eq!(s.worker("w-r").await["apiBaseUrl"], "http://10.0.0.9:7000");
    assert_eq!(heartbeat(&s, &new, "w-r").await.status, 200);
    assert_eq!(heartbeat(&s, &old, "w-r").await.status, 401);
    // The worker is live again: its bound token cannot take it back over.
    let replay = join(&s, &rejoin_token, "w-r", "http://10.6.6.6:7000").await;
    assert_eq!(replay.status, 409, "{}", replay.text);
    assert_eq!(s.worker("w-r").await["apiBaseUrl"], "http://127.0.0.1:1");

    let audit = s.get("/api/vdi/audit").await.text;
    assert!(audit.contains("reset-credential"), "{audit}");
    assert!(audit.contains("rejoin"), "{audit}");
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let open = token(&s, json!({"maxUses": 5})).await;
    let credential = credential_of(&join(&s, &open, "w-v", "http://10.0.0.1:7000").await);
    assert_eq!(heartbeat(&s, &credential, "w-v").await.status, 200);

    let path = "/api/vdi/workers/w-v/credential";
    assert_eq!(
        s.send(Method::DELETE, path, &Cred::Proctor, None)
            .await
            .status,
        403
    );
    assert_eq!(
        s.send(Method::DELETE, path, &Cred::Admin, None)
            .await
            .status,
        204
    );
    let refused = heartbeat(&s, &credential, "w-v").await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(
        refused.error_message().contains("revoked"),
        "{}",
        refused.text
    );
    assert_eq!(rotate(&s, Some(&credential), "w-v").await.status, 401);
    let deregister = Reply::from(
        s.request(Method::POST, "/api/vdi/workers/w-v/deregister")
            .header("x-worker-token", &credential)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(deregister.status, 401);
    // The code stays taken; revoking again is harmless.
    assert_eq!(
        join(&s, &open, "w-v", "http://10.6.6.6:7000").await.status,
        409
    );
    assert_eq!(
        s.send(Method::DELETE, path, &Cred::Admin, None)
            .await
            .status,
        204
    );
    let none = s
        .send(
            Method::DELETE,
            "/api/vdi/workers/w-none/credential",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(none.status, 404, "{}", none.text);
    let audit = s.get("/api/vdi/audit").await.text;
    assert!(audit.contains("revoke-credential"), "{audit}");
}

#[tokio::test]
async fn rotation_overlaps_then_retires_the_old_credential() {
    let (mut setup, _sim) = Setup::memory();
    setup.config.credentials = CredentialPolicy {
        ttl: Duration::from_secs(3000),
        overlap: Duration::from_secs(60),
    };
    let clock = ManualClock::new(SystemClock.now());
    let s = TestServer::start_with_clock(setup, Some(Arc::new(clock.clone()))).await;
    let open = token(&s, json!({"maxUses": 2})).await;
    let joined = join(&s, &open, "w-rot", "http://10.0.0.1:7000").await;
    let old = credential_of(&joined);
    assert_eq!(joined.json["ttlSec"], 3000);
    let other = credential_of(&join(&s, &open, "w-other", "http://10.0.0.2:7000").await);

    // Only the worker's own credential may rotate it.
    assert_eq!(rotate(&s, None, "w-rot").await.status, 401);
    assert_eq!(rotate(&s, Some(WORKER_TOKEN), "w-rot").await.status, 401);
    assert_eq!(rotate(&s, Some(&other), "w-rot").await.status, 403);

    clock.advance(Duration::from_secs(2000));
    let rotated = rotate(&s, Some(&old), "w-rot").await;
    let new = credential_of(&rotated);
    assert_ne!(new, old);
    assert_eq!(rotated.json["ttlSec"], 3000);
    // During the overlap both work: no heartbeat in flight is refused.
    assert_eq!(heartbeat(&s, &old, "w-rot").await.status, 200);
    assert_eq!(heartbeat(&s, &new, "w-rot").await.status, 200);
    clock.advance(Duration::from_secs(61));
    let late = heartbeat(&s, &old, "w-rot").await;
    assert_eq!(late.status, 401, "{}", late.text);
    assert!(late.error_message().contains("expired"), "{}", late.text);
    assert_eq!(heartbeat(&s, &new, "w-rot").await.status, 200);

    // Past its own expiry the new one is refused too, and cannot rotate.
    clock.advance(Duration::from_secs(3000));
    assert_eq!(heartbeat(&s, &new, "w-rot").await.status, 401);
    assert_eq!(rotate(&s, Some(&new), "w-rot").await.status, 401);
    let audit = s.get("/api/vdi/audit").await.text;
    assert!(audit.contains("rotate-credential"), "{audit}");
    assert!(audit.contains("worker:w-rot"), "{audit}");
}
