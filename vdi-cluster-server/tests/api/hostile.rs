//! What a hostile client still found once the trust boundaries held (the
//! trust issue's "defects and hardening"), each tried again here against
//! real servers: page sessions that outlived a sign-out, bodies with a key
//! twice, gRPC messages that do not decode or frames that do not hold
//! together (raw HTTP/2 frames over loopback), the shared token speaking for
//! a worker with its own credential, install scripts trusting `Host`,
//! webhooks aimed at the control plane's own networks, …

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::uri::PathAndQuery;
use bytes::{Buf, BufMut};
use clap::Parser;
use reqwest::Method;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
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
async fn replicas() -> (TestServer, TestServer, FakeWorker) {
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

/// Bytes sent and received as they are: what a hostile client puts in a
/// gRPC frame.
#[derive(Debug, Default, Clone, Copy)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[tokio::test]
async fn a_grpc_message_that_does_not_decode_is_invalid_argument() {
    let (a, _b, _worker) = replicas().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(vdi_cluster_server::grpc::serve(listener, a.state.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    // Not a message at all; a string field cut short.
    for bytes in [
        vec![0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![0x0a, 0x0a, b'w', b'-', b'1'],
    ] {
        let mut request = Request::new(bytes.clone());
        request
            .metadata_mut()
            .insert("x-worker-token", WORKER_TOKEN.parse().unwrap());
        grpc.ready().await.unwrap();
        let path = PathAndQuery::from_static("/vdi.cluster.v1.WorkerManagementService/Heartbeat");
        let status = grpc.unary(request, path, Raw).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{bytes:02x?}: {status:?}"
        );
    }
}

/// Sends `body` as it is, in raw HTTP/2 frames, to `path` of the gRPC
/// server at `addr` with a worker token and `extra` headers; the answer's
/// `grpc-status` and `grpc-message` (from the headers of a trailers-only
/// answer, or from the trailers).
async fn raw_grpc(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> (Code, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut request = axum::http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-worker-token", WORKER_TOKEN);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let (answer, mut stream) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    stream
        .send_data(bytes::Bytes::copy_from_slice(body), true)
        .unwrap();
    let (parts, mut answer) = answer.await.unwrap().into_parts();
    let status = |headers: &axum::http::HeaderMap| {
        let code = headers.get("grpc-status")?;
        let message = headers
            .get("grpc-message")
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default();
        Some((Code::from_bytes(code.as_bytes()), message))
    };
    if let Some(status) = status(&parts.headers) {
        return status;
    }
    while let Some(data) = answer.data().await {
        data.unwrap();
    }
    let trailers = answer.trailers().await.unwrap().expect("trailers");
    status(&trailers).expect("a grpc-status")
}

#[tokio::test]
async fn a_grpc_frame_that_does_not_hold_together_is_invalid_argument() {
    let (a, _b, _worker) = replicas().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(vdi_cluster_server::grpc::serve(listener, a.state.clone()));
    let heartbeat = "/vdi.cluster.v1.WorkerManagementService/Heartbeat";
    let cases: [(&str, &[u8], Code); 6] = [
        // The compressed flag, and no grpc-encoding.
        (
            "compressed",
            &[1, 0, 0, 0, 2, 0x0a, 0x00],
            Code::InvalidArgument,
        ),
        ("flag 7", &[7, 0, 0, 0, 0], Code::InvalidArgument),
        // A length prefix of 10 over a body of 3.
        (
            "long prefix",
            &[0, 0, 0, 0, 10, 0x0a, 0x01, b'w'],
            Code::InvalidArgument,
        ),
        ("cut header", &[0, 0, 0], Code::InvalidArgument),
        ("no message", &[], Code::InvalidArgument),
        // 4 GiB announced: refused before any of it is read.
        (
            "oversized",
            &[0, 0xff, 0xff, 0xff, 0xff],
            Code::ResourceExhausted,
        ),
    ];
    for (what, body, expected) in cases {
        let (code, message) = raw_grpc(addr, heartbeat, &[], body).await;
        assert_eq!(code, expected, "{what}: {message}");
    }
    // A compressed frame with a grpc-encoding is tonic's to answer (no
    // compression is enabled), never INTERNAL.
    let (code, message) = raw_grpc(
        addr,
        heartbeat,
        &[("grpc-encoding", "gzip")],
        &[1, 0, 0, 0, 2, 0x0a, 0x00],
    )
    .await;
    assert_eq!(code, Code::Unimplemented, "{message}");
    // Frames that hold together pass: the health check's empty message.
    let (code, message) = raw_grpc(addr, "/grpc.health.v1.Health/Check", &[], &[0; 5]).await;
    assert_eq!(code, Code::Ok, "{message}");
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
            assert_eq!(
                worker_heartbeat(&b, &own, "w-own", &worker.url)
                    .await
                    .status,
                401
            );
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
