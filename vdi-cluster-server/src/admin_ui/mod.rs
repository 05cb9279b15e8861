//! The operators' page, served at `/admin` from files embedded in the
//! binary (`assets/admin/`: plain HTML, CSS and JavaScript modules, no
//! build step). `/` redirects to it.
//!
//! The page holds no secret: it signs in through `POST
//! /api/vdi/auth/session` (the JWT goes into an HttpOnly cookie) and calls
//! the API like any client, so the route table's roles apply to it
//! unchanged. Every answer carries a strict Content-Security-Policy (no
//! inline script or style, nothing from another origin, no framing),
//! `X-Frame-Options: DENY`, `nosniff` and `no-referrer`.

mod assets;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

pub use assets::{Asset, assets};

/// Where the page lives.
pub const PAGE_PATH: &str = "/admin/";

/// The page's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn security_headers() -> [(HeaderName, &'static str); 5] {
    [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (CACHE_CONTROL, "no-cache"),
    ]
}

fn serve(path: &str) -> Response {
    match assets::find(path) {
        Some(asset) => (
            security_headers(),
            [(CONTENT_TYPE, asset.content_type())],
            asset.body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            security_headers(),
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Not found",
        )
            .into_response(),
    }
}

async fn index() -> Response {
    serve("index.html")
}

async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}

async fn to_page() -> Redirect {
    Redirect::to(PAGE_PATH)
}

/// The page's routes: `/` and `/admin` redirect to `/admin/`, which serves
/// `index.html`; `/admin/<file>` serves the other files. Public: the files
/// hold no data and no secret.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_page))
        .route("/admin", get(to_page))
        .route(PAGE_PATH, get(index))
        .route("/admin/{*path}", get(file))
}
