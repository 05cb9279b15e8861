//! Test support: a real server on 127.0.0.1 port 0, credentials, request
//! helpers and fake worker nodes (small axum apps on their own ports).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::service::BackgroundConfig;
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{Clock, MemoryStore, ServiceConfig, Store, WorkerClient};
use vdi_cluster_protocol::{
    AllocateRequest, PrewarmRequest, ReleaseRequest, WORKER_ALLOCATE_PATH, WORKER_PREWARM_PATH,
    WORKER_RELEASE_PATH,
};
use vdi_cluster_server::auth::{AuthConfig, Role, mint_jwt};
use vdi_cluster_server::client::HttpWorkerClient;
use vdi_cluster_server::install::InstallConfig;
use vdi_cluster_server::server::run;
use vdi_cluster_server::throttle::ThrottleConfig;
use vdi_cluster_server::{AppState, HttpLimits};

pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const WORKER_TOKEN: &str = "worker-token-for-tests-0123456789abcdef";
pub const CLUSTER_TOKEN: &str = "cluster-token-for-tests-0123456789abcdef";
/// Timeout of one worker call in tests: short enough that a hanging fake
/// worker fails over quickly, long enough for a healthy one on a busy
/// machine. No test asserts on time.
pub const WORKER_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The seed-000 heartbeat body, verbatim, with `activeSessions` and the
/// worker's code and URL replaced.
pub fn seed_heartbeat(code: &str, api_base_url: &str, active: u32) -> Value {
    json!({
      "code": code,
      "name": "Worker Node 2",
      "apiBaseUrl": api_base_url,
      "totalCpuCores": 32,
      "totalMemoryMb": 65536,
      "reservedCpuCores": 4,
      "reservedMemoryMb": 8192,
      "vmCpuCores": 1.5,
      "vmMemoryMb": 2048,
      "activeSessions": active
    })
}

/// A heartbeat with exactly `slots` slots.
pub fn slots_heartbeat(code: &str, api_base_url: &str, slots: u32, active: u32) -> Value {
    json!({
      "code": code,
      "name": code,
      "apiBaseUrl": api_base_url,
      "totalCpuCores": slots,
      "totalMemoryMb": slots * 1024,
      "vmCpuCores": 1,
      "vmMemoryMb": 1024,
      "activeSessions": active
    })
}

/// The service configuration of tests: fresh snapshots, no herd rotation
/// (deterministic order), short worker calls.
// `ServiceConfig` is `#[non_exhaustive]`: no struct literal from outside.
#[allow(clippy::field_reassign_with_default)]
pub fn test_config() -> ServiceConfig {
    let mut c = ServiceConfig::default();
    c.snapshot_max_age = Duration::ZERO;
    c.herd_width = 1;
    c.worker_call_timeout = WORKER_CALL_TIMEOUT;
    c.seed = 7;
    c
}

/// How to build a test server.
pub struct Setup {
    pub store: Arc<dyn Store>,
    pub memory: Option<MemoryStore>,
    pub client: Arc<dyn WorkerClient>,
    pub config: ServiceConfig,
    pub limits: HttpLimits,
    pub throttle: ThrottleConfig,
    pub store_name: &'static str,
    pub auth: AuthConfig,
}

impl Setup {
    /// In-memory store, simulated workers.
    pub fn memory() -> (Self, SimulatedWorkers) {
        let memory = MemoryStore::new();
        let sim = SimulatedWorkers::new();
        (
            Self {
                store: Arc::new(memory.clone()),
                memory: Some(memory),
                client: Arc::new(sim.clone()),
                config: test_config(),
                limits: HttpLimits::default(),
                throttle: lenient_throttle(),
                store_name: "memory",
                auth: auth(),
            },
            sim,
        )
    }

    /// In-memory store, real HTTP calls to workers.
    pub fn memory_http() -> Self {
        let memory = MemoryStore::new();
        Self {
            store: Arc::new(memory.clone()),
            memory: Some(memory),
            client: Arc::new(
                HttpWorkerClient::new(Some(CLUSTER_TOKEN), WORKER_CALL_TIMEOUT).unwrap(),
            ),
            config: test_config(),
            limits: HttpLimits::default(),
            throttle: lenient_throttle(),
            store_name: "memory",
            auth: auth(),
        }
    }

    /// Any store, real HTTP calls to workers.
    pub fn with_store_http(store: Arc<dyn Store>, name: &'static str) -> Self {
        Self {
            store,
            memory: None,
            client: Arc::new(
                HttpWorkerClient::new(Some(CLUSTER_TOKEN), WORKER_CALL_TIMEOUT).unwrap(),
            ),
            config: test_config(),
            limits: HttpLimits::default(),
            throttle: lenient_throttle(),
            store_name: name,
            auth: auth(),
        }
    }

    /// Any store, simulated workers.
    pub fn with_store(store: Arc<dyn Store>, name: &'static str) -> (Self, SimulatedWorkers) {
        let sim = SimulatedWorkers::new();
        (
            Self {
                store,
                memory: None,
                client: Arc::new(sim.clone()),
                config: test_config(),
                limits: HttpLimits::default(),
                throttle: lenient_throttle(),
                store_name: name,
                auth: auth(),
            },
            sim,
        )
    }
}

/// Tests send many bad credentials from one address on purpose: no
/// throttling, unless a test asks for it.
pub fn lenient_throttle() -> ThrottleConfig {
    ThrottleConfig {
        max_failures: u32::MAX,
        ..ThrottleConfig::default()
    }
}

pub fn auth() -> AuthConfig {
    AuthConfig::new()
        .with_jwt_secret(JWT_SECRET.as_bytes(), None, None)
        .with_worker_token(WORKER_TOKEN)
}

/// A running server; stopped when dropped.
pub struct TestServer {
    pub url: String,
    pub memory: Option<MemoryStore>,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestServer {
    pub async fn start(setup: Setup) -> Self {
        Self::start_with_clock(setup, None).await
    }

    /// As [`start`](Self::start), on `clock` when given.
    pub async fn start_with_clock(setup: Setup, clock: Option<Arc<dyn Clock>>) -> Self {
        let shutdown = CancellationToken::new();
        let mut builder = AppState::builder(Arc::clone(&setup.store), setup.client, setup.auth)
            .config(setup.config)
            .limits(setup.limits)
            .throttle(setup.throttle)
            .store_name(setup.store_name)
            .shutdown(shutdown.clone())
            .install(InstallConfig::new(
                CLUSTER_TOKEN.to_owned(),
                None,
                std::env::current_exe().unwrap(),
            ));
        if let Some(clock) = clock {
            builder = builder.clock(clock);
        }
        let state = builder.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let background = BackgroundConfig {
            reconcile_enabled: false,
            ..BackgroundConfig::default()
        };
        let task = tokio::spawn(run(
            listener,
            state.clone(),
            background,
            Duration::from_secs(10),
        ));
        Self {
            url,
            memory: setup.memory,
            store: setup.store,
            state,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn memory(&self) -> &MemoryStore {
        self.memory.as_ref().expect("memory store")
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        cred: &Cred,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = cred.apply(self.request(method, path));
        if let Some(b) = body {
            req = req.json(b);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// Admin GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &Cred::Admin, None).await
    }

    pub async fn heartbeat(&self, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/api/vdi/workers/heartbeat",
            &Cred::Worker,
            Some(body),
        )
        .await
    }

    pub async fn patch_worker(&self, code: &str, body: &Value) -> Reply {
        self.send(
            Method::PATCH,
            &format!("/api/vdi/workers/{code}"),
            &Cred::Admin,
            Some(body),
        )
        .await
    }

    pub async fn allocate(&self, exam: &str, user: &str) -> Reply {
        self.send(
            Method::POST,
            "/api/vdi/sessions",
            &Cred::Service,
            Some(&json!({"examId": exam, "userId": user})),
        )
        .await
    }

    pub async fn release(&self, exam: &str, user: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/api/vdi/sessions/{exam}/{user}"),
            &Cred::Service,
            None,
        )
        .await
    }

    pub async fn worker(&self, code: &str) -> Value {
        let r = self.get(&format!("/api/vdi/workers/{code}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json
    }
}

/// A response: status, headers, body (JSON when it parses, else `Null`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// Asserts the seed-004 error shape and returns the message.
    pub fn error_message(&self) -> &str {
        assert_eq!(self.json["code"], self.status, "{self:?}");
        assert!(self.json["error"].is_string(), "{self:?}");
        self.json["message"].as_str().expect("message")
    }
}

/// A credential presented by a test request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cred {
    None,
    Wrong,
    Worker,
    Cluster,
    /// A `SERVICE` JWT: the exam application.
    Service,
    Proctor,
    Admin,
    Student(String),
    Expired,
    AlgNone,
    WrongSecret,
}

pub fn jwt(sub: &str, roles: &[Role]) -> String {
    mint_jwt(
        JWT_SECRET.as_bytes(),
        sub,
        roles,
        Duration::from_secs(3600),
        None,
        None,
    )
    .unwrap()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Cred {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Cred::None => req,
            Cred::Wrong => req
                .bearer_auth("not-a-jwt")
                .header("x-worker-token", "wrong")
                .header("x-cluster-token", "wrong"),
            Cred::Worker => req.header("x-worker-token", WORKER_TOKEN),
            Cred::Cluster => req.header("x-cluster-token", CLUSTER_TOKEN),
            Cred::Service => req.bearer_auth(jwt("exam-app", &[Role::Service])),
            Cred::Proctor => req.bearer_auth(jwt("proctor-1", &[Role::Proctor])),
            Cred::Admin => req.bearer_auth(jwt("admin-1", &[Role::Admin])),
            Cred::Student(sub) => req.bearer_auth(jwt(sub, &[Role::Student])),
            Cred::Expired => {
                let claims = json!({"sub": "admin-1", "role": "ADMIN", "exp": unix_now() - 3600});
                let token = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &claims,
                    &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
                )
                .unwrap();
                req.bearer_auth(token)
            }
            Cred::AlgNone => {
                let claims = json!({"sub": "admin-1", "role": "ADMIN", "exp": unix_now() + 3600});
                let token = format!(
                    "{}.{}.",
                    b64(r#"{"alg":"none","typ":"JWT"}"#),
                    b64(&claims.to_string())
                );
                req.bearer_auth(token)
            }
            Cred::WrongSecret => {
                let token = mint_jwt(
                    b"another-secret-entirely-0123456789",
                    "admin-1",
                    &[Role::Admin],
                    Duration::from_secs(3600),
                    None,
                    None,
                )
                .unwrap();
                req.bearer_auth(token)
            }
        }
    }
}

/// How a fake worker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Healthy,
    /// Never answers within the call timeout.
    Hang,
    /// Answers 500.
    Fail,
    /// Answers 200 with a body that is not the protocol's JSON.
    BadJson,
}

#[derive(Debug)]
pub struct FakeState {
    pub behaviour: Mutex<Behaviour>,
    pub allocates: AtomicU64,
    pub releases: AtomicU64,
    pub prewarms: AtomicU64,
    pub bad_tokens: AtomicU64,
    pub sessions: Mutex<Vec<(String, String)>>,
}

/// A fake worker node serving the worker-side API on 127.0.0.1.
pub struct FakeWorker {
    pub url: String,
    pub state: Arc<FakeState>,
    shutdown: CancellationToken,
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn misbehave(state: &FakeState, headers: &HeaderMap) -> Option<(StatusCode, String)> {
    if headers.get("x-cluster-token").and_then(|v| v.to_str().ok()) != Some(CLUSTER_TOKEN) {
        state.bad_tokens.fetch_add(1, Ordering::SeqCst);
        return Some((
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized", "message": "bad cluster token", "code": 401})
                .to_string(),
        ));
    }
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Healthy => None,
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            None
        }
        Behaviour::Fail => Some((
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "Internal Server Error", "message": "docker exploded", "code": 500})
                .to_string(),
        )),
        Behaviour::BadJson => Some((StatusCode::OK, "<html>surprise</html>".to_owned())),
    }
}

fn raw(status: StatusCode, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn fake_allocate(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(req): Json<AllocateRequest>,
) -> axum::response::Response {
    state.allocates.fetch_add(1, Ordering::SeqCst);
    if let Some((status, body)) = misbehave(&state, &headers).await {
        return raw(status, body);
    }
    state
        .sessions
        .lock()
        .unwrap()
        .push((req.exam_id.clone(), req.user_id.clone()));
    raw(
        StatusCode::OK,
        json!({"session": {"connection": format!("rdp://fake/{}/{}", req.exam_id, req.user_id)}})
            .to_string(),
    )
}

async fn fake_release(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(req): Json<ReleaseRequest>,
) -> axum::response::Response {
    state.releases.fetch_add(1, Ordering::SeqCst);
    if let Some((status, body)) = misbehave(&state, &headers).await {
        return raw(status, body);
    }
    let mut sessions = state.sessions.lock().unwrap();
    let before = sessions.len();
    sessions.retain(|(e, u)| !(e == &req.exam_id && u == &req.user_id));
    raw(
        StatusCode::OK,
        json!({"released": sessions.len() < before}).to_string(),
    )
}

async fn fake_prewarm(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    Json(req): Json<PrewarmRequest>,
) -> axum::response::Response {
    state.prewarms.fetch_add(1, Ordering::SeqCst);
    if let Some((status, body)) = misbehave(&state, &headers).await {
        return raw(status, body);
    }
    raw(StatusCode::OK, json!({"accepted": req.count}).to_string())
}

impl FakeWorker {
    pub async fn start(behaviour: Behaviour) -> Self {
        let state = Arc::new(FakeState {
            behaviour: Mutex::new(behaviour),
            allocates: AtomicU64::new(0),
            releases: AtomicU64::new(0),
            prewarms: AtomicU64::new(0),
            bad_tokens: AtomicU64::new(0),
            sessions: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route(WORKER_ALLOCATE_PATH, post(fake_allocate))
            .route(WORKER_RELEASE_PATH, post(fake_release))
            .route(WORKER_PREWARM_PATH, post(fake_prewarm))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Self {
            url,
            state,
            shutdown,
        }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    pub fn allocates(&self) -> u64 {
        self.state.allocates.load(Ordering::SeqCst)
    }

    pub fn releases(&self) -> u64 {
        self.state.releases.load(Ordering::SeqCst)
    }
}
