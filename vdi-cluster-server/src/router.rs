//! The router: every route of the [route table](crate::routes::route_table)
//! behind its credential check ([`gate`]), the OpenAPI document
//! the `/api/openapi.json` handler serves (built here from the table and
//! handed to it as an extension, so the handlers never loop back to
//! [`openapi`]), and the middleware.
//!
//! Middleware, outermost first: request id (`x-request-id`, generated when
//! absent, echoed in the answer), a tracing span per request (its answer
//! logged at debug: a formatted line per request at the default `info`
//! cost more than the request's JWT check), panic catcher
//! (a 500 with Aetherium's error body), request timeout (408), body limit (413),
//! the operators' page's session cookie standing for its stored session's
//! operator ([`cookie_credential`]), then per route the credential check.
//!
//! The operators' page ([`admin_ui`]) is merged beside the API.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower::timeout::TimeoutLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::admin_ui;
use crate::error::ApiError;
use crate::gate::{self, Gate};
use crate::openapi;
use crate::page_session::cookie_credential;
use crate::routes::route_table;
use crate::state::AppState;

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
    let document = Arc::new(openapi::document_value());
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in route_table() {
        let gate = Gate {
            state: state.clone(),
            access: route.access,
        };
        let endpoint = (route.handler)(route.method.filter())
            .route_layer(middleware::from_fn_with_state(gate, gate::gate));
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
    let session = middleware::from_fn_with_state(state.clone(), cookie_credential);
    app.merge(admin_ui::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(document))
        .layer(session)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(span)
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(panicked))
                .layer(HandleErrorLayer::new(timed_out))
                .layer(TimeoutLayer::new(limits.request_timeout)),
        )
        .with_state(state)
}
