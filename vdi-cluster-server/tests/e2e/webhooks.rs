//! Alerts by webhook, end to end: a control plane started with
//! `--webhook-url` posting to a receiver in this test, which verifies every
//! delivery with the reference Standard Webhooks library (`standardwebhooks`)
//! and de-duplicates by `webhook-id` as a receiver should.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{
    Api, Cluster, ControlPlane, CpOptions, Worker, WorkerOptions, eventually, eventually_within,
    wait_worker,
};
use crate::redis_prefix::RedisPrefix;

/// A signing secret (base64 of 32 bytes).
const SECRET: &str = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LW9mLTMyLWJ5dGU=";

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 204 to every verified delivery.
    Up,
    /// 503 to everything (the receiver is down).
    Down,
    /// Hold every request open without answering.
    Hang,
}

#[derive(Debug, Default)]
struct Seen {
    /// Verified deliveries answered 2xx: (webhook-id, body).
    accepted: Vec<(String, Value)>,
    /// Every request that reached the receiver: its webhook-id and type.
    requests: Vec<(String, String)>,
    /// Requests whose signature did not verify.
    forged: usize,
}

#[derive(Clone)]
pub(crate) struct Receiver {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Seen>>,
    url: String,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mode = *r.mode.lock().unwrap();
    let kind = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    r.seen.lock().unwrap().requests.push((id.clone(), kind));
    if verifier.verify(&body, &headers).is_err() {
        r.seen.lock().unwrap().forged += 1;
        return StatusCode::UNAUTHORIZED;
    }
    match mode {
        Mode::Down => StatusCode::SERVICE_UNAVAILABLE,
        Mode::Hang => std::future::pending().await,
        Mode::Up => {
            let json: Value = serde_json::from_slice(&body).unwrap();
            r.seen.lock().unwrap().accepted.push((id, json));
            StatusCode::NO_CONTENT
        }
    }
}

impl Receiver {
    pub(crate) async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/vdi", listener.local_addr().unwrap());
        let r = Self {
            mode: Arc::new(Mutex::new(mode)),
            seen: Arc::default(),
            url,
        };
        let app = axum::Router::new()
            .route("/hooks/vdi", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Accepted deliveries of `kind` about worker `code`, de-duplicated
    /// by webhook-id: (id, how many times it arrived).
    pub(crate) fn alerts(&self, kind: &str, code: &str) -> Vec<(String, usize)> {
        let seen = self.seen.lock().unwrap();
        let mut out: Vec<(String, usize)> = Vec::new();
        for (id, body) in &seen.accepted {
            if body["type"] == kind && body["data"]["worker"] == code {
                match out.iter_mut().find(|(i, _)| i == id) {
                    Some((_, n)) => *n += 1,
                    None => out.push((id.clone(), 1)),
                }
            }
        }
        out
    }

    /// The bodies of accepted deliveries of `kind`, in arrival order.
    pub(crate) fn bodies(&self, kind: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.accepted
            .iter()
            .filter(|(_, b)| b["type"] == kind)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Accepted `session.migrated` deliveries of student `user`:
    /// (webhook-id, body), in arrival order.
    fn migrations(&self, user: &str) -> Vec<(String, Value)> {
        let seen = self.seen.lock().unwrap();
        seen.accepted
            .iter()
            .filter(|(_, b)| b["type"] == "session.migrated")
            .filter(|(_, b)| b["data"]["session"]["userId"] == user)
            .cloned()
            .collect()
    }

    fn forged(&self) -> usize {
        self.seen.lock().unwrap().forged
    }
}

pub(crate) fn options(base: CpOptions, receiver: &Receiver, replica: &str) -> CpOptions {
    let mut o = base;
    o.extra.extend(
        [
            "--webhook-url",
            &receiver.url,
            "--webhook-secret",
            SECRET,
            "--webhook-timeout-sec",
            "3",
            // The receiver listens on loopback: a lab's target.
            "--webhook-allow-private",
            "--replica-id",
            replica,
        ]
        .map(str::to_owned),
    );
    o
}

/// The delivery list of the control plane's only endpoint.
async fn deliveries(api: &Api) -> Vec<Value> {
    let hooks = api.get("/api/vdi/webhooks").await;
    let id = hooks["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let listed = api.get(&format!("/api/vdi/webhooks/{id}/deliveries")).await;
    listed["deliveries"].as_array().unwrap().clone()
}

async fn healthy_worker(cp: &ControlPlane, code: &str) -> Worker {
    let worker = Worker::start(code, &cp.api_base(), WorkerOptions::default()).await;
    wait_worker(&Api::new(&cp.url), code, "isHealthy", Value::Bool(true)).await;
    worker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_is_alerted_once_signed() {
    let receiver = Receiver::start(Mode::Up).await;
    let cp = ControlPlane::start(options(CpOptions::default(), &receiver, "cp-a")).await;
    let api = Api::new(&cp.url);
    let mut worker = healthy_worker(&cp, "w-alert").await;

    worker.proc.kill();
    let (id, _) = eventually("worker.offline delivered", || async {
        receiver
            .alerts("worker.offline", "w-alert")
            .into_iter()
            .next()
    })
    .await;
    // Give a duplicate every chance to show up: the worker stays dead
    // through several more health ticks and reconcile passes.
    eventually("the offline worker is judged offline", || async {
        let w = api.worker("w-alert").await;
        (w["status"] == "offline").then_some(())
    })
    .await;
    let alerts = receiver.alerts("worker.offline", "w-alert");
    assert_eq!(alerts, vec![(id.clone(), 1)], "delivered once");
    assert_eq!(receiver.forged(), 0);
    let listed = deliveries(&api).await;
    let offline: Vec<&Value> = listed
        .iter()
        .filter(|d| d["type"] == "worker.offline")
        .collect();
    assert_eq!(offline.len(), 1, "{listed:?}");
    assert_eq!(offline[0]["id"], id.as_str());
    assert_eq!(offline[0]["state"], "delivered");
    assert_eq!(offline[0]["attempts"][0]["statusCode"], 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_retried_until_the_receiver_is_back() {
    let receiver = Receiver::start(Mode::Down).await;
    let cp = ControlPlane::start(options(CpOptions::default(), &receiver, "cp-a")).await;
    let api = Api::new(&cp.url);
    let mut a = healthy_worker(&cp, "w-down-1").await;
    let mut b = healthy_worker(&cp, "w-down-2").await;
    a.proc.kill();
    b.proc.kill();

    // Both alerts are tried and refused while the receiver is down.
    eventually("both alerts attempted and refused", || async {
        let listed = deliveries(&api).await;
        let refused = listed
            .iter()
            .filter(|d| d["type"] == "worker.offline")
            .filter(|d| d["attempts"][0]["statusCode"] == 503)
            .count();
        (refused == 2).then_some(())
    })
    .await;
    assert!(receiver.alerts("worker.offline", "w-down-1").is_empty());

    receiver.set(Mode::Up);
    for code in ["w-down-1", "w-down-2"] {
        eventually(
            &format!("{code}'s alert after the receiver is back"),
            || async { (receiver.alerts("worker.offline", code).len() == 1).then_some(()) },
        )
        .await;
    }
    let listed = deliveries(&api).await;
    for d in listed.iter().filter(|d| d["type"] == "worker.offline") {
        assert_eq!(d["state"], "delivered", "{d}");
        let attempts = d["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 2, "retried: {d}");
        assert_eq!(attempts.last().unwrap()["statusCode"], 204);
    }
    assert_eq!(receiver.forged(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joining_with_a_token_is_announced_once_signed() {
    let receiver = Receiver::start(Mode::Up).await;
    let base = CpOptions {
        worker_token: true,
        ..CpOptions::default()
    };
    let cp = ControlPlane::start(options(base, &receiver, "cp-a")).await;
    let api = Api::new(&cp.url);
    let (status, created) = api
        .admin(
            Method::POST,
            "/api/vdi/join-tokens",
            Some(json!({"ttlSec": 600, "maxUses": 1})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let dir =
        std::env::temp_dir().join(format!("vdi-e2e-joined-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let options = WorkerOptions {
        slots: 2,
        extra: vec![
            "--join-token".into(),
            token,
            "--credential-file".into(),
            dir.join("credential").display().to_string(),
        ],
        ..WorkerOptions::default()
    };
    let _worker = Worker::start("w-joined", &cp.api_base(), options).await;
    wait_worker(&api, "w-joined", "availability", json!("healthy")).await;

    let (id, _) = eventually("worker.registered delivered", || async {
        receiver
            .alerts("worker.registered", "w-joined")
            .into_iter()
            .next()
    })
    .await;
    // The worker keeps heartbeating (each one a write of its record) while
    // its delivery is acknowledged: none of them writes the alert again.
    eventually("the registration's delivery acknowledged", || async {
        deliveries(&api)
            .await
            .iter()
            .any(|d| d["type"] == "worker.registered" && d["state"] == "delivered")
            .then_some(())
    })
    .await;
    let seq = api.worker("w-joined").await["seq"].as_u64();
    eventually("two more heartbeats", || async {
        let now = api.worker("w-joined").await["seq"].as_u64();
        (now >= seq.map(|s| s + 2)).then_some(())
    })
    .await;
    assert_eq!(
        receiver.alerts("worker.registered", "w-joined"),
        vec![(id, 1)],
        "delivered once"
    );
    let registered = deliveries(&api)
        .await
        .into_iter()
        .filter(|d| d["type"] == "worker.registered")
        .count();
    assert_eq!(registered, 1);
    assert_eq!(receiver.forged(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_students_redispatch_is_announced_once_signed() {
    let receiver = Receiver::start(Mode::Up).await;
    let options = options(CpOptions::default(), &receiver, "cp-a");
    let mut cluster = Cluster::start(&[4, 4, 4], options).await;
    let api = cluster.api.clone();
    let placed = api.allocate("exam-m", "s-back").await;
    let victim = placed["workerCode"].as_str().unwrap().to_owned();

    cluster.worker_mut(&victim).proc.kill();
    wait_worker(&api, &victim, "availability", json!("unreachable")).await;
    let again = api.allocate("exam-m", "s-back").await;
    assert_eq!(again["outcome"], "redispatched", "{again}");
    let to = again["workerCode"].as_str().unwrap().to_owned();

    let (id, body) = eventually("session.migrated delivered", || async {
        receiver.migrations("s-back").into_iter().next()
    })
    .await;
    assert_eq!(body["data"]["from"], victim.as_str(), "{body}");
    assert_eq!(body["data"]["to"], to.as_str(), "{body}");
    eventually("the migration's delivery acknowledged", || async {
        deliveries(&api)
            .await
            .iter()
            .any(|d| d["type"] == "session.migrated" && d["state"] == "delivered")
            .then_some(())
    })
    .await;
    // The student reloads: the same desktop, no second migration.
    let reload = api.allocate("exam-m", "s-back").await;
    assert_eq!(reload["workerCode"], to.as_str(), "{reload}");
    let migrated = deliveries(&api)
        .await
        .into_iter()
        .filter(|d| d["type"] == "session.migrated")
        .count();
    assert_eq!(migrated, 1);
    let ids: Vec<String> = receiver
        .migrations("s-back")
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ids, vec![id], "delivered once");
    assert_eq!(receiver.forged(), 0);
}

/// How long to wait for deliveries after the leader is killed: the
/// survivor takes the background lease only when the killed leader's lease
/// expires (30 s).
const LEASE_HANDOVER_BOUND: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_delivery_loses_nothing_on_redis() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    let receiver = Receiver::start(Mode::Hang).await;
    let mut leader = ControlPlane::start(options(redis.options(), &receiver, "replica-a")).await;
    leader.proc.wait_log("holding the background lease").await;
    let survivor = ControlPlane::start(options(redis.options(), &receiver, "replica-b")).await;
    let to_survivor = Api::new(&survivor.url);
    let both = format!("{},{}", leader.api_base(), survivor.api_base());
    let mut worker = Worker::start("w-mid", &both, WorkerOptions::default()).await;
    wait_worker(&to_survivor, "w-mid", "isHealthy", Value::Bool(true)).await;

    worker.proc.kill();
    // The leader is sending the alert: the receiver holds the request.
    let first = eventually("the leader sends the alert", || async {
        let seen = receiver.seen.lock().unwrap();
        seen.requests
            .iter()
            .find(|(_, kind)| kind == "worker.offline")
            .map(|(id, _)| id.clone())
    })
    .await;
    leader.proc.kill();
    receiver.set(Mode::Up);

    let (id, n) = eventually_within(
        "the survivor delivers the alert",
        LEASE_HANDOVER_BOUND,
        || async {
            receiver
                .alerts("worker.offline", "w-mid")
                .into_iter()
                .next()
        },
    )
    .await;
    assert_eq!(id, first, "the same webhook-id as the interrupted attempt");
    assert_eq!(n, 1);
    eventually("the survivor records the delivery", || async {
        let listed = deliveries(&to_survivor).await;
        listed
            .iter()
            .any(|d| d["id"] == id.as_str() && d["state"] == "delivered")
            .then_some(())
    })
    .await;
    assert_eq!(receiver.forged(), 0);
}
