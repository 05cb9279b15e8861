//! Fake worker nodes: small axum apps on their own ports that serve the
//! worker-side API, healthy or misbehaving on purpose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vdi_cluster_protocol::{
    AllocateRequest, PrewarmRequest, ReleaseRequest, WORKER_ALLOCATE_PATH, WORKER_PREWARM_PATH,
    WORKER_RELEASE_PATH,
};

use super::CLUSTER_TOKEN;

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

async fn misbehave(state: &FakeState, headers: &HeaderMap) -> Option<axum::response::Response> {
    if headers.get("x-cluster-token").and_then(|v| v.to_str().ok()) != Some(CLUSTER_TOKEN) {
        state.bad_tokens.fetch_add(1, Ordering::SeqCst);
        return Some(raw(
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
        Behaviour::Fail => Some(raw(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "Internal Server Error", "message": "docker exploded", "code": 500})
                .to_string(),
        )),
        Behaviour::BadJson => Some(raw(StatusCode::OK, "<html>surprise</html>".to_owned())),
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
    if let Some(answer) = misbehave(&state, &headers).await {
        return answer;
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
    if let Some(answer) = misbehave(&state, &headers).await {
        return answer;
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
    if let Some(answer) = misbehave(&state, &headers).await {
        return answer;
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
