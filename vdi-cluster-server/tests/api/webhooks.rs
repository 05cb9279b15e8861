//! Webhook endpoints: admin only, validated field by field, the secret
//! shown once; an admin transition writes its alert with the change.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cred, Reply, Setup, TestServer, slots_heartbeat};

async fn create(s: &TestServer, cred: &Cred, body: &Value) -> Reply {
    s.send(Method::POST, "/api/vdi/webhooks", cred, Some(body))
        .await
}

#[tokio::test]
async fn webhooks_are_for_admins_and_the_secret_is_shown_once() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["worker.offline"]});

    assert_eq!(create(&s, &Cred::None, &body).await.status, 401);
    assert_eq!(create(&s, &Cred::Proctor, &body).await.status, 403);
    assert_eq!(create(&s, &Cred::Service, &body).await.status, 403);
    let listed_by_proctor = s
        .send(Method::GET, "/api/vdi/webhooks", &Cred::Proctor, None)
        .await;
    assert_eq!(listed_by_proctor.status, 403);

    let created = create(&s, &Cred::Admin, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    standardwebhooks::Webhook::new(&secret).expect("a secret standard libraries accept");
    assert_eq!(created.json["eventTypes"], json!(["worker.offline"]));
    let id = created.json["id"].as_str().unwrap().to_owned();

    let listed = s.get("/api/vdi/webhooks").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json["webhooks"][0]["id"], id.as_str());
    assert!(
        !listed.text.contains(&secret),
        "listings never show the secret"
    );

    let deliveries = s.get(&format!("/api/vdi/webhooks/{id}/deliveries")).await;
    assert_eq!(deliveries.status, 200);
    assert_eq!(deliveries.json["deliveries"], json!([]));

    let gone = s
        .send(
            Method::DELETE,
            &format!("/api/vdi/webhooks/{id}"),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(gone.status, 204);
    let again = s
        .send(
            Method::DELETE,
            &format!("/api/vdi/webhooks/{id}"),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(again.status, 404);
    assert!(again.error_message().contains(&id));
    s.stop().await;
}

#[tokio::test]
async fn bad_webhook_input_names_the_field() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    for (body, field) in [
        (json!({"url": "ftp://example.org/hook"}), "url"),
        (json!({"url": "https://user:pw@example.org/hook"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (
            json!({"url": "http://h/", "eventTypes": ["worker.gone"]}),
            "eventTypes",
        ),
        (
            json!({"url": "http://h/", "description": "x".repeat(501)}),
            "description",
        ),
        (
            json!({"url": "http://h/", "eventTypes": "worker.offline"}),
            "eventTypes",
        ),
        (json!({"eventTypes": []}), "url"),
    ] {
        let r = create(&s, &Cred::Admin, &body).await;
        assert!((400..500).contains(&r.status), "{body}: {r:?}");
        assert_eq!(r.json["field"], field, "{body}: {}", r.text);
        r.error_message();
    }
    let unknown = create(
        &s,
        &Cred::Admin,
        &json!({"url": "http://h/", "secret": "x"}),
    )
    .await;
    assert!((400..500).contains(&unknown.status), "{unknown:?}");

    let missing = s.get("/api/vdi/webhooks/wh_none/deliveries").await;
    assert_eq!(missing.status, 404);
    let bad_limit = s.get("/api/vdi/webhooks/wh_none/deliveries?limit=0").await;
    assert_eq!(bad_limit.status, 422, "{}", bad_limit.text);
    assert_eq!(bad_limit.json["field"], "limit");
    s.stop().await;
}

#[tokio::test]
async fn an_admin_transition_writes_its_alert_with_the_change() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let created = create(
        &s,
        &Cred::Admin,
        &json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["worker.policy_changed"]}),
    )
    .await;
    let id = created.json["id"].as_str().unwrap().to_owned();
    // One session runs on it: the drain keeps it draining (a write that
    // does not need an empty worker, carrying its alert).
    let hb = s
        .heartbeat(&slots_heartbeat("w-hook", "http://127.0.0.1:1", 4, 1))
        .await;
    assert_eq!(hb.status, 200, "{}", hb.text);

    let drained = s.patch_worker("w-hook", &json!({"isDraining": true})).await;
    assert_eq!(drained.status, 200, "{}", drained.text);
    let listed = s.get(&format!("/api/vdi/webhooks/{id}/deliveries")).await;
    assert_eq!(listed.status, 200);
    let deliveries = listed.json["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{}", listed.text);
    assert_eq!(deliveries[0]["type"], "worker.policy_changed");
    assert!(deliveries[0]["id"].as_str().unwrap().starts_with("msg_"));

    // Not failed: nothing to retry.
    let delivery = deliveries[0]["id"].as_str().unwrap();
    let retry = s
        .send(
            Method::POST,
            &format!("/api/vdi/webhooks/{id}/deliveries/{delivery}/retry"),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(retry.status, 409, "{}", retry.text);
    s.stop().await;
}
