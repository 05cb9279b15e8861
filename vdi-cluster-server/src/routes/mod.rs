//! The route table and the router built from it.
//!
//! [`route_table`] lists every route once, with its method, path and the
//! credential it requires ([`Access`]). [`router`] is built from it (each
//! route gets the auth middleware for its access), the OpenAPI document's
//! security is derived from it, and the tests generate the auth matrix from
//! it — so a route cannot be added without being authorised, documented
//! and tested.
//!
//! Middleware, outermost first: request id (`x-request-id`, generated when
//! absent, echoed in the answer), a tracing span per request, panic catcher
//! (a 500 with the seed-004 body), request timeout (408), body limit (413),
//! then per route the credential check.

pub(crate) mod cluster;
pub(crate) mod join;
pub(crate) mod ops;
pub(crate) mod sessions;
pub(crate) mod workers;

use std::any::Any;
use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use tower::ServiceBuilder;
use tower::timeout::TimeoutLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use vdi_cluster_core::WorkerId;

use crate::auth::{self, Access, Gate};
use crate::error::ApiError;
use crate::state::AppState;

/// An HTTP method used by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// As an [`http::Method`](Method).
    pub fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Put => Method::PUT,
            Self::Patch => Method::PATCH,
            Self::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// Method.
    pub method: HttpMethod,
    /// Path, with `{param}` segments as in OpenAPI.
    pub path: &'static str,
    /// Credential required.
    pub access: Access,
    /// One line for humans (also the OpenAPI summary).
    pub summary: &'static str,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

macro_rules! routes {
    ($($method:ident $path:literal $access:ident $handler:path => $summary:literal;)*) => {
        &[$(RouteSpec {
            method: HttpMethod::$method,
            path: $path,
            access: Access::$access,
            summary: $summary,
            handler: |filter| on(filter, $handler),
        },)*]
    };
}

static ROUTES: &[RouteSpec] = routes! {
    Post "/api/vdi/workers/heartbeat" Worker workers::heartbeat
        => "A worker's heartbeat: capacity, sessions, health (seed 000)";
    Post "/api/vdi/workers/register" Worker workers::register
        => "Register a worker ahead of its first heartbeat (seed 003)";
    Post "/api/vdi/workers/{code}/deregister" Worker workers::deregister
        => "A worker leaving cleanly: offline at once (seed 003)";
    Post "/api/vdi/workers/join" Join join::join
        => "Register with a join token; answers the worker's own credential (seeds 002/003)";
    Post "/api/vdi/join-tokens" Admin join::create
        => "Create a join token (shown once, stored hashed, with an expiry)";
    Get "/api/vdi/join-tokens" Admin join::list
        => "List join tokens (never their secrets)";
    Delete "/api/vdi/join-tokens/{id}" Admin join::revoke
        => "Revoke a join token";
    Get "/api/vdi/workers" Operator workers::list
        => "List workers, filtered by status, zone or label=key:value";
    Get "/api/vdi/workers/summary" Operator workers::summary
        => "Workers healthy/total, slots available/max, active sessions (seed 000)";
    Get "/api/vdi/workers/healthy" Operator workers::healthy
        => "Workers heartbeating within the TTL (seed 003)";
    Post "/api/vdi/workers/reconcile" Operator workers::reconcile
        => "Reconcile now: stale dispatches, stuck reservations, counter drift (seed 000)";
    Get "/api/vdi/workers/{code}" Operator workers::detail
        => "One worker (seed 004)";
    Patch "/api/vdi/workers/{code}" Operator workers::patch
        => "Drain, activate, disable or enable a worker (seed 000)";
    Delete "/api/vdi/workers/{code}" Admin workers::remove
        => "Delete a worker's record (refused while sessions remain)";
    Get "/api/vdi/workers/{code}/sessions" Operator workers::sessions
        => "A worker's sessions (seed 004)";
    Get "/api/vdi/workers/{code}/drain" Operator workers::drain_info
        => "What still blocks a worker's drain";
    Post "/api/vdi/workers/{code}/drain" Operator workers::drain
        => "Drain a worker: keep its sessions, take no new ones (seed 004)";
    Put "/api/vdi/workers/{code}/drain" Operator workers::drain_put
        => "Drain a worker (idempotent PUT form)";
    Post "/api/vdi/workers/{code}/activate" Operator workers::activate
        => "Return a draining, drained or disabled worker to service (seed 004)";
    Post "/api/vdi/sessions" Session sessions::allocate
        => "Place a student's session (or return the one it has)";
    Get "/api/vdi/sessions/{examId}/{userId}" Session sessions::get
        => "Where a student's session is";
    Delete "/api/vdi/sessions/{examId}/{userId}" Session sessions::release
        => "Release a student's session (on submission); idempotent";
    Post "/api/vdi/exams/{examId}/prewarm" Service sessions::prewarm
        => "Prewarm machines for an exam, split across workers";
    Get "/api/vdi/cluster/stats" Operator cluster::stats
        => "Cluster statistics with per-status and per-zone breakdowns (seed 004)";
    Get "/api/vdi/cluster/distribution" Operator cluster::distribution
        => "Sessions per worker (seed 004)";
    Get "/api/vdi/audit" Admin cluster::audit
        => "Audit trail of admin actions, newest first";
    Get "/api/vdi/events" Operator cluster::events
        => "Cluster events as server-sent events";
    Get "/healthz" Public ops::healthz
        => "Liveness";
    Get "/readyz" Public ops::readyz
        => "Readiness: the storage backend answers";
    Get "/metrics" Public ops::metrics
        => "Prometheus metrics";
    Get "/api/openapi.json" Public ops::openapi
        => "This API's OpenAPI 3 document";
};

/// Every route of the API.
pub fn route_table() -> &'static [RouteSpec] {
    ROUTES
}

/// Worker codes that collide with a fixed path under `/api/vdi/workers/`
/// (`summary`, `healthy`, …): heartbeats and registrations using them are
/// refused, since their worker could never be addressed.
pub fn reserved_worker_codes() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().filter_map(|r| {
        let rest = r.path.strip_prefix("/api/vdi/workers/")?;
        (!rest.contains('/') && !rest.starts_with('{')).then_some(rest)
    })
}

/// Refuses a reserved worker code (see [`reserved_worker_codes`]).
pub(crate) fn check_not_reserved(id: &WorkerId) -> Result<(), ApiError> {
    if reserved_worker_codes().any(|c| c == id.as_str()) {
        return Err(ApiError::invalid(vdi_cluster_core::ValidationError::new(
            "code",
            format!("{id} is reserved by the API; choose another code"),
        )));
    }
    Ok(())
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("No route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

async fn timed_out(_: tower::BoxError) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "the request took longer than the request timeout; work already started completes on its own",
    )
}

fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::internal().into_response()
}

fn span(req: &Request<Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %id,
    )
}

/// The whole API over `state`.
pub fn router(state: AppState) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in route_table() {
        let gate = Gate {
            state: state.clone(),
            access: route.access,
        };
        let endpoint = (route.handler)(route.method.filter())
            .route_layer(middleware::from_fn_with_state(gate, auth::gate));
        let merged = match by_path.remove(route.path) {
            Some(existing) => existing.merge(endpoint),
            None => endpoint,
        };
        by_path.insert(route.path, merged);
    }
    let mut app = Router::new();
    for (path, endpoint) in by_path {
        app = app.route(path, endpoint);
    }
    let limits = state.limits();
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(panicked))
                .layer(HandleErrorLayer::new(timed_out))
                .layer(TimeoutLayer::new(limits.request_timeout)),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_route_is_unique() {
        let mut seen = HashSet::new();
        for r in route_table() {
            assert!(seen.insert((r.method, r.path)), "{:?} {}", r.method, r.path);
        }
    }

    #[test]
    fn the_readme_lists_every_route() {
        let readme = include_str!("../../README.md");
        for r in route_table() {
            let line = format!("`{} {}`", r.method.method(), r.path);
            assert!(readme.contains(&line), "README lacks {line}");
        }
    }

    #[test]
    fn reserved_codes() {
        let codes: Vec<_> = reserved_worker_codes().collect();
        for c in [
            "heartbeat",
            "register",
            "join",
            "summary",
            "healthy",
            "reconcile",
        ] {
            assert!(codes.contains(&c), "{c}");
        }
    }
}
