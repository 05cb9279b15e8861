//! What a hostile client still found once the trust boundaries held (the
//! trust issue's "defects and hardening"), each tried again here against
//! real servers: page sessions that outlived a sign-out, bodies with a key
//! twice, gRPC messages that do not decode or frames that do not hold
//! together (`hostile_grpc.rs`), the shared token speaking for
//! a worker with its own credential, install scripts trusting `Host`,
//! webhooks aimed at the control plane's own networks, …

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use reqwest::Method;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use vdi_cluster_core::events::{Event, EventKind};
use vdi_cluster_core::outbox::{OutboxEntry, WebhookEndpoint};
use vdi_cluster_core::service::WebhookSender;
use vdi_cluster_core::{MemoryStore, Store, Timestamp};
use vdi_cluster_server::auth::Role;
use vdi_cluster_server::config::{Cli, Command, ServeArgs};
use vdi_cluster_server::server::default_public_url;
use vdi_cluster_server::webhooks::HttpWebhookSender;

use crate::common::{
    Behaviour, Cred, FakeWorker, JWT_SECRET, Reply, Setup, TestServer, WORKER_TOKEN, jwt,
    slots_heartbeat,
};
use crate::trust::serve_on_defaults;

/// A signed-in page: the cookie (`name=value`) and the CSRF token.
struct Page {
    cookie: String,
    csrf: String,
}

async fn sign_in(s: &TestServer, token: &str) -> Page {
    let r = s
        .request(Method::POST, "/api/vdi/auth/session")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    Page {
        cookie,
        csrf: body["csrfToken"].as_str().unwrap().to_owned(),
    }
}

/// `method path` as the page sends it: the cookie and the CSRF token.
async fn as_page(
    s: &TestServer,
    page: &Page,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = s
        .request(method, path)
        .header("cookie", &page.cookie)
        .header("x-csrf-token", &page.csrf);
    if let Some(body) = body {
        req = req.json(&body);
    }
    Reply::from(req.send().await.unwrap()).await
}

/// Two replicas on one store, a worker registered.
pub(crate) async fn replicas() -> (TestServer, TestServer, FakeWorker) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = TestServer::start(Setup::with_store_http(Arc::clone(&store), "memory")).await;
    let b = TestServer::start(Setup::with_store_http(store, "memory")).await;
    let worker = FakeWorker::start(Behaviour::Healthy).await;
    let r = a
        .send(
            Method::POST,
            "/api/vdi/workers/heartbeat",
            &Cred::Worker,
            Some(&slots_heartbeat("w-1", &worker.url, 4, 0)),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    (a, b, worker)
}

#[tokio::test]
async fn a_sign_out_ends_the_session_on_every_replica() {
    let (a, b, _worker) = replicas().await;
    let page = sign_in(&a, &jwt("ops-1", &[Role::Admin])).await;
    // The cookie holds an opaque id, not the JWT: as a bearer it opens nothing.
    let id = page.cookie.split_once('=').unwrap().1;
    assert!(!id.starts_with("eyJ"), "{id}");
    let r = b
        .request(Method::GET, "/api/vdi/audit")
        .bearer_auth(id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let patch = json!({ "isDraining": true });
    for s in [&a, &b] {
        assert_eq!(
            as_page(s, &page, Method::GET, "/api/vdi/audit", None)
                .await
                .status,
            200
        );
        assert_eq!(
            as_page(s, &page, Method::GET, "/api/vdi/auth/session", None)
                .await
                .status,
            200
        );
    }
    let r = as_page(
        &b,
        &page,
        Method::PATCH,
        "/api/vdi/workers/w-1",
        Some(patch.clone()),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);

    // Signed out on one replica: the same cookie and token open nothing on
    // either, though the JWT they came from is still valid.
    let r = as_page(&a, &page, Method::DELETE, "/api/vdi/auth/session", None).await;
    assert_eq!(r.status, 204);
    for s in [&a, &b] {
        for (method, path, body) in [
            (Method::GET, "/api/vdi/audit", None),
            (Method::GET, "/api/vdi/auth/session", None),
            (Method::PATCH, "/api/vdi/workers/w-1", Some(patch.clone())),
        ] {
            let r = as_page(s, &page, method.clone(), path, body).await;
            assert_eq!(
                r.status, 401,
                "{method} {path} after sign-out: {:?}",
                r.json
            );
        }
    }
}

#[tokio::test]
async fn an_admin_signs_every_operator_out_everywhere() {
    let (a, b, _worker) = replicas().await;
    let admin = sign_in(&a, &jwt("ops-1", &[Role::Admin])).await;
    let proctor = sign_in(&b, &jwt("proctor-1", &[Role::Proctor])).await;
    // A PROCTOR may not.
    let r = as_page(&b, &proctor, Method::DELETE, "/api/vdi/auth/sessions", None).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(
        as_page(&a, &proctor, Method::GET, "/api/vdi/workers", None)
            .await
            .status,
        200
    );

    let r = as_page(&b, &admin, Method::DELETE, "/api/vdi/auth/sessions", None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["ended"], 2);
    for page in [&admin, &proctor] {
        for s in [&a, &b] {
            let r = as_page(s, page, Method::GET, "/api/vdi/workers", None).await;
            assert_eq!(r.status, 401);
        }
    }
    // Written to the audit trail, with its actor.
    let audit = a.get("/api/vdi/audit").await;
    let entry = &audit.json["entries"][0];
    assert_eq!(entry["action"], "sign-out-everywhere", "{audit:?}");
    assert_eq!(entry["actor"], "ops-1");
    // A bearer JWT is not a page session: it still works.
    assert_eq!(
        a.send(Method::GET, "/api/vdi/workers", &Cred::Admin, None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_key_twice_in_one_body_is_refused_by_name() {
    let (a, _b, worker) = replicas().await;
    let mut heartbeat = slots_heartbeat("w-first", &worker.url, 4, 0).to_string();
    heartbeat.pop();
    heartbeat.push_str(r#","code":"w-second"}"#);
    let r = Reply::from(
        Cred::Worker
            .apply(a.request(Method::POST, "/api/vdi/workers/heartbeat"))
            .header("content-type", "application/json")
            .body(heartbeat)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json["field"], "code", "{r:?}");
    assert!(r.error_message().contains("duplicate key code"), "{r:?}");
    for code in ["w-first", "w-second"] {
        let path = format!("/api/vdi/workers/{code}");
        assert_eq!(a.get(&path).await.status, 404, "{code} was registered");
    }
    // Nested too, on every JSON body (here the session API's).
    let body = r#"{"examId":"e-1","userId":"u-1","constraints":{"zone":"a","zone":"b"}}"#;
    let r = Reply::from(
        Cred::Service
            .apply(a.request(Method::POST, "/api/vdi/sessions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error_message().contains("constraints.zone"), "{r:?}");
}

async fn worker_heartbeat(s: &TestServer, token: &str, code: &str, url: &str) -> Reply {
    Reply::from(
        s.request(Method::POST, "/api/vdi/workers/heartbeat")
            .header("x-worker-token", token)
            .json(&slots_heartbeat(code, url, 4, 0))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_shared_token_never_speaks_for_a_worker_with_its_own_credential() {
    let (a, b, worker) = replicas().await;
    let created = a
        .send(
            Method::POST,
            "/api/vdi/join-tokens",
            &Cred::Admin,
            Some(&json!({"maxUses": 1})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let joined = Reply::from(
        a.request(Method::POST, "/api/vdi/workers/join")
            .header("x-join-token", created.json["token"].as_str().unwrap())
            .json(&json!({"code": "w-own", "apiBaseUrl": worker.url}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    let own = joined.json["credential"].as_str().unwrap().to_owned();
    assert_eq!(
        worker_heartbeat(&a, &own, "w-own", &worker.url)
            .await
            .status,
        200
    );

    let path = "/api/vdi/workers/w-own/credential";
    for revoked in [false, true] {
        if revoked {
            let r = a.send(Method::DELETE, path, &Cred::Admin, None).await;
            assert_eq!(r.status, 204, "{}", r.text);
            // The replica that revoked it refuses it at once...
            assert_eq!(
                worker_heartbeat(&a, &own, "w-own", &worker.url)
                    .await
                    .status,
                401
            );
            // ...another honours the revocation once its memory of
            // the credential ends (2 s by default); the wait is bounded.
            tokio::time::timeout(Duration::from_secs(20), async {
                while worker_heartbeat(&b, &own, "w-own", &worker.url)
                    .await
                    .status
                    != 401
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await
            .expect("the other replica refuses the revoked credential");
        }
        for s in [&a, &b] {
            let r = worker_heartbeat(s, WORKER_TOKEN, "w-own", &worker.url).await;
            assert_eq!(r.status, 403, "revoked {revoked}: {}", r.text);
            assert!(r.error_message().contains("own credential"), "{}", r.text);
            let r = s
                .send(
                    Method::POST,
                    "/api/vdi/workers/register",
                    &Cred::Worker,
                    Some(&slots_heartbeat("w-own", &worker.url, 4, 0)),
                )
                .await;
            assert_eq!(r.status, 403, "register, revoked {revoked}: {}", r.text);
        }
    }
    // Workers without a credential of their own still heartbeat with it.
    assert_eq!(
        worker_heartbeat(&a, WORKER_TOKEN, "w-1", &worker.url)
            .await
            .status,
        200
    );
}

fn serve_args(extra: &[&str]) -> ServeArgs {
    let mut argv = vec!["vdi-cluster", "serve", "--jwt-secret", JWT_SECRET];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => *args,
        _ => unreachable!(),
    }
}

async fn install_script(url: &str, host: &str) -> Reply {
    let http = reqwest::Client::new();
    Reply::from(
        http.post(format!("{url}/api/vdi/workers/install-script"))
            .bearer_auth(jwt("ops-1", &[Role::Admin]))
            .header("host", host)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_install_script_never_takes_its_url_from_the_host_header() {
    // No URL configured (`serve` on 0.0.0.0 without --public-url):
    // refused, whatever the Host header says.
    let (url, shutdown) = serve_on_defaults(&serve_args(&[])).await;
    let r = install_script(&url, "attacker.example:8080").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.error_message().contains("--public-url"), "{}", r.text);
    shutdown.cancel();

    // Configured: the configured URL.
    let args = serve_args(&["--public-url", "http://cp.exam.internal:8080"]);
    let (url, shutdown) = serve_on_defaults(&args).await;
    let r = install_script(&url, "attacker.example:8080").await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        r.text.contains("http://cp.exam.internal:8080"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("attacker"), "{}", r.text);
    shutdown.cancel();

    // `serve` without --public-url: its specific listen address, or none.
    let mut args = serve_args(&[]);
    default_public_url(&mut args, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(args.public_url, None);
    default_public_url(&mut args, "10.0.0.5:8080".parse().unwrap());
    assert_eq!(args.public_url.as_deref(), Some("http://10.0.0.5:8080"));
}

/// A receiver on loopback that answers 204 and counts what reaches it.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

fn delivery(url: &str) -> (WebhookEndpoint, OutboxEntry) {
    let endpoint = WebhookEndpoint::new(
        "wh_1".into(),
        url,
        Vec::new(),
        None,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        Timestamp(0),
    )
    .unwrap();
    let entry = OutboxEntry {
        id: "msg_1".into(),
        endpoint: "wh_1".into(),
        dedup: "msg_1".into(),
        event: Event {
            at: Timestamp(1),
            kind: EventKind::WorkerRemoved {
                worker: vdi_cluster_core::WorkerId::parse("code", "w-1").unwrap(),
            },
        },
    };
    (endpoint, entry)
}

#[tokio::test]
async fn webhooks_never_reach_the_control_planes_own_networks_unless_a_lab_allows_it() {
    let (url, hits) = receiver().await;
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let strict = HttpWebhookSender::new().unwrap();
    let timeout = Duration::from_secs(5);
    for target in [
        url.clone(),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1:9/hook".to_owned(),
        "http://192.168.1.1/hook".to_owned(),
    ] {
        let (endpoint, entry) = delivery(&target);
        let sent = strict.send(&endpoint, &entry, timeout).await;
        assert_eq!(sent.status, None, "{target}");
        let error = sent.error.unwrap_or_default();
        assert!(
            error.contains("refused") && error.contains("--webhook-allow-private"),
            "{target}: {error}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a refused delivery reached the receiver"
    );

    // A lab allows them explicitly.
    let lab = HttpWebhookSender::allowing_private_targets().unwrap();
    for target in [url.clone(), format!("http://localhost:{port}/hook")] {
        let (endpoint, entry) = delivery(&target);
        let sent = lab.send(&endpoint, &entry, timeout).await;
        assert_eq!(sent.status, Some(204), "{target}: {:?}", sent.error);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}
