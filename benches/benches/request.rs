//! Criterion bench of one session request's whole path in the server,
//! without the network: the router (request id, tracing span, timeout,
//! body limit, the credential gate with a service JWT), the handler, the
//! cluster service, the in-memory store and a simulated worker client.
//! A regression of the per-request cost shows in its one number.
//!
//! Run with: `cargo bench -p vdi-cluster-benches --bench request`

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use vdi_cluster_benches::fleet;
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{MemoryStore, ServiceConfig};
use vdi_cluster_server::AppState;
use vdi_cluster_server::auth::{AuthConfig, Role, mint_jwt};

const SECRET: &[u8] = b"the request bench's secret, 32 bytes or more";

/// Sends `request` through `app`; panics unless it is answered `expected`.
async fn send(app: &Router, request: Request<Body>, expected: StatusCode) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
}

/// `POST /api/vdi/sessions` then `DELETE` of the same session, as the exam
/// application sends them, on 500 workers of 20 slots.
fn allocate_release(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = AuthConfig::new().with_jwt_secret(SECRET, None, None);
    let state = AppState::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(SimulatedWorkers::new()),
        auth,
    )
    .service(|s| {
        s.config(ServiceConfig {
            seed: 7,
            ..ServiceConfig::default()
        })
    })
    .build();
    let app = vdi_cluster_server::router(state.clone());
    rt.block_on(async {
        for i in 0..500 {
            state
                .service()
                .fleet()
                .heartbeat(fleet::heartbeat(i, 20, 0, "boot", 1))
                .await
                .unwrap();
        }
    });
    let bearer = format!(
        "Bearer {}",
        mint_jwt(
            SECRET,
            "exam-app",
            &[Role::Service],
            Duration::from_secs(86_400),
            None,
            None
        )
        .unwrap()
    );
    let mut i = 0u64;
    c.bench_function("request/allocate+release/memory/500 workers", |b| {
        b.iter(|| {
            i += 1;
            let (exam, user) = (format!("exam-{}", i % 10), format!("u{i}"));
            let allocate = Request::post("/api/vdi/sessions")
                .header(header::AUTHORIZATION, &bearer)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    r#"{{"examId":"{exam}","userId":"{user}"}}"#
                )))
                .unwrap();
            let release = Request::delete(format!("/api/vdi/sessions/{exam}/{user}"))
                .header(header::AUTHORIZATION, &bearer)
                .body(Body::empty())
                .unwrap();
            rt.block_on(async {
                send(&app, allocate, StatusCode::CREATED).await;
                send(&app, release, StatusCode::OK).await;
            })
        })
    });
}

criterion_group!(benches, allocate_release);
criterion_main!(benches);
