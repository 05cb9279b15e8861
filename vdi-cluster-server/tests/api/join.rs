//! Join tokens: created by an admin (shown once, stored hashed, expiring,
//! counted), redeemed by a worker for its own credential, which then
//! authenticates that worker — and only that worker — on the worker routes.

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::store::JoinToken;
use vdi_cluster_server::auth::{AuthConfig, hash_hex};

use crate::common::{Cred, JWT_SECRET, Reply, Setup, TestServer, slots_heartbeat};

async fn create(s: &TestServer, body: Option<Value>) -> Reply {
    s.send(
        Method::POST,
        "/api/vdi/join-tokens",
        &Cred::Admin,
        body.as_ref(),
    )
    .await
}

async fn join(s: &TestServer, token: &str, code: &str) -> Reply {
    Reply::from(
        s.request(Method::POST, "/api/vdi/workers/join")
            .header("x-join-token", token)
            .json(&json!({"code": code, "apiBaseUrl": "http://127.0.0.1:1"}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn heartbeat_with(s: &TestServer, token: Option<&str>, code: &str) -> Reply {
    let mut req = s
        .request(Method::POST, "/api/vdi/workers/heartbeat")
        .json(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0));
    if let Some(t) = token {
        req = req.header("x-worker-token", t);
    }
    Reply::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_join_token_is_shown_once_and_redeemed_for_an_own_credential() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;

    let created = create(&s, Some(json!({"ttlSec": 600, "maxUses": 2}))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.json["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("vdij_"));
    assert_eq!(created.json["maxUses"], 2);
    assert_eq!(created.json["uses"], 0);

    // Listed without its secret; stored only as a hash.
    let listed = s.get("/api/vdi/join-tokens").await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(&token));
    assert_eq!(listed.json["tokens"][0]["id"], created.json["id"]);
    let stored = s.store.join_tokens().await.unwrap();
    assert_eq!(stored[0].token_hash, hash_hex(&token));

    // Bad input is refused before a use is counted.
    let bad = Reply::from(
        s.request(Method::POST, "/api/vdi/workers/join")
            .header("x-join-token", &token)
            .json(&json!({"code": "bad code"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json["field"], "code");

    let joined = join(&s, &token, "w-join-1").await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    let credential = joined.json["credential"].as_str().unwrap().to_owned();
    assert!(credential.starts_with("vdiw.w-join-1."));
    assert_eq!(s.worker("w-join-1").await["status"], "pending");
    assert_eq!(join(&s, &token, "w-join-2").await.status, 201);
    let used_up = join(&s, &token, "w-join-3").await;
    assert_eq!(used_up.status, 401, "{}", used_up.text);
    assert!(
        used_up.json["message"]
            .as_str()
            .unwrap()
            .contains("x-join-token")
    );
    let listed = s.get("/api/vdi/join-tokens").await;
    assert_eq!(listed.json["tokens"][0]["uses"], 2);
    assert_eq!(listed.json["tokens"][0]["usable"], false);

    // The credential works for its own worker only.
    let ok = heartbeat_with(&s, Some(&credential), "w-join-1").await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let other = heartbeat_with(&s, Some(&credential), "w-join-2").await;
    assert_eq!(other.status, 403, "{}", other.text);
    let forged = format!("{credential}0");
    assert_eq!(
        heartbeat_with(&s, Some(&forged), "w-join-1").await.status,
        401
    );
    // The exam platform's shared token no longer speaks for it: a worker
    // with its own credential is accepted only with it.
    let shared = s
        .heartbeat(&slots_heartbeat("w-join-1", "http://127.0.0.1:1", 4, 0))
        .await;
    assert_eq!(shared.status, 403, "{}", shared.text);

    // Deregistration with the credential.
    let gone = Reply::from(
        s.request(Method::POST, "/api/vdi/workers/w-join-1/deregister")
            .header("x-worker-token", &credential)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.text);

    // The audit trail names the join.
    let audit = s.get("/api/vdi/audit").await;
    assert!(audit.text.contains("create-join-token"), "{}", audit.text);
    assert!(audit.text.contains("\"join\""), "{}", audit.text);
}

#[tokio::test]
async fn expired_revoked_and_invalid_tokens_are_refused() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let expired = JoinToken {
        id: "old".into(),
        token_hash: hash_hex("vdij_old"),
        created_by: "admin".into(),
        created_at: Timestamp(1_000),
        expires_at: Timestamp(2_000),
        max_uses: 5,
        uses: 0,
        worker: None,
    };
    s.store.put_join_token(&expired).await.unwrap();
    assert_eq!(join(&s, "vdij_old", "w1").await.status, 401);
    assert_eq!(join(&s, "vdij_unknown", "w1").await.status, 401);
    let missing = Reply::from(
        s.request(Method::POST, "/api/vdi/workers/join")
            .json(&json!({"code": "w1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, 401);

    let created = create(&s, None).await;
    let id = created.json["id"].as_str().unwrap().to_owned();
    let token = created.json["token"].as_str().unwrap().to_owned();
    let path = format!("/api/vdi/join-tokens/{id}");
    assert_eq!(
        s.send(Method::DELETE, &path, &Cred::Admin, None)
            .await
            .status,
        204
    );
    assert_eq!(
        s.send(Method::DELETE, &path, &Cred::Admin, None)
            .await
            .status,
        404
    );
    assert_eq!(join(&s, &token, "w1").await.status, 401);

    for body in [
        json!({"ttlSec": 0}),
        json!({"maxUses": 0}),
        json!({"ttlSec": 99_999_999}),
    ] {
        let r = create(&s, Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
    }
    assert_eq!(create(&s, Some(json!({"ttl": 5}))).await.status, 400);
    let proctor = s
        .send(Method::POST, "/api/vdi/join-tokens", &Cred::Proctor, None)
        .await;
    assert_eq!(proctor.status, 403);
    assert_eq!(s.store.join_tokens().await.unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_shared_token_a_joined_worker_must_use_its_credential() {
    let (mut setup, _sim) = Setup::memory();
    setup.auth = AuthConfig::new()
        .with_jwt_secret(JWT_SECRET.as_bytes(), None, None)
        .allow_anonymous_workers();
    let s = TestServer::start(setup).await;
    // Anonymous heartbeats, allowed explicitly (development), for workers
    // without a credential.
    assert_eq!(heartbeat_with(&s, None, "w-open").await.status, 200);

    let token = create(&s, None).await.json["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = join(&s, &token, "w-own").await;
    let credential = joined.json["credential"].as_str().unwrap().to_owned();
    let anonymous = heartbeat_with(&s, None, "w-own").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert!(
        anonymous.json["message"]
            .as_str()
            .unwrap()
            .contains("own credential")
    );
    assert_eq!(
        heartbeat_with(&s, Some(&credential), "w-own").await.status,
        200
    );
    assert_eq!(
        heartbeat_with(&s, Some(&credential), "w-open").await.status,
        403
    );
}
