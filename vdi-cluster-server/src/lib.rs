//! # vdi-cluster-server
//!
//! The reference control plane of vdi-cluster: core's
//! [`ClusterService`](vdi_cluster_core::ClusterService) over HTTP, exactly
//! as the exam platform's registry documents it (paths and camelCase bodies
//! unchanged), plus the rest of the product brief: worker detail and sessions,
//! drain/activate, cluster statistics with zones, distribution,
//! registration, the session API of the exam application, an audit trail,
//! server-sent events, `/healthz`, `/readyz`, `/metrics` and an OpenAPI 3
//! document. The binary is `vdi-cluster` (`vdi-cluster serve`).
//!
//! ## Shape
//!
//! * [`routes::route_table`] lists every route with its method, path and
//!   required credential ([`auth::Access`]); the handlers live beside it,
//!   one module per audience. Handlers are thin: extract, call the
//!   service, answer a protocol body.
//! * [`router()`] builds the router from the table: each route behind
//!   [`gate`] (the request-time credential check), the middleware, and the
//!   [`openapi`] document handed to its handler.
//! * Every JSON body is a type of the `vdi-cluster-protocol` crate (shared
//!   with the node agent, `vdi-cluster-node`, behind `vdi-cluster worker`),
//!   converted from core's types; no handler serializes a core type, and
//!   values are validated once, by core.
//! * [`error::ApiError`] owns the status mapping and Aetherium's error body
//!   `{"error", "message", "code"}`.
//! * [`auth`]: the access model, HS256 JWTs (`ADMIN`/`PROCTOR`/`STUDENT`),
//!   secrets and [`auth::AuthConfig`] — none of it knows [`AppState`];
//!   [`gate`] adds the checks that read the store.
//! * [`state`]: [`AppState`], what handlers share; [`extract`]: strict
//!   body, path and query extractors; [`events`]: the SSE hub;
//!   [`metrics`]: Prometheus metrics; [`client`]: the HTTP `WorkerClient`;
//!   [`config`]: the command line; [`stats_cache`]: the cluster
//!   statistics kept per replica for `--stats-cache-sec`, with `ETag`s.
//! * [`store`]: `memory`, `redis://…` or `postgres://…` from one URL.
//! * [`server`]: `serve`, graceful shutdown, the background loop.
//! * [`demo`]: `vdi-cluster demo`, a control plane and simulated workers on
//!   this machine.
//! * [`admin_ui`]: the operators' page at `/admin`, embedded in the binary;
//!   its session cookie is [`auth::session`].
//!
//! ## Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use vdi_cluster_core::MemoryStore;
//! use vdi_cluster_server::{AppState, router};
//! use vdi_cluster_server::auth::AuthConfig;
//! use vdi_cluster_server::client::HttpWorkerClient;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthConfig::new()
//!     .with_jwt_secret(b"a long random secret of at least 32 bytes", None, None)
//!     .with_worker_token("the workers' heartbeat token, 32 bytes or more");
//! // The cluster token goes only to workers, with every call to them.
//! let client = HttpWorkerClient::new(
//!     Some("the cluster token of 32 bytes or more"),
//!     std::time::Duration::from_secs(15),
//! )?;
//! let state = AppState::builder(Arc::new(MemoryStore::new()), Arc::new(client), auth).build();
//! // An accept queue for an exam start's burst of connections.
//! let listener = vdi_cluster_node::listen::bind("127.0.0.1:8080".parse()?)?;
//! axum::serve(listener, router(state)).await?;
//! # Ok(()) }
//! ```

pub mod admin_ui;
pub mod auth;
pub mod client;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
mod exam_schemas;
pub mod extract;
pub mod gate;
pub mod grpc;
pub mod install;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod page_session;
mod path_params;
pub mod peer_cert;
pub mod router;
pub mod routes;
pub mod scale_hook;
pub mod server;
pub mod state;
pub mod stats_cache;
pub mod store;
pub mod throttle;
pub mod transfer;
pub mod webhook_guard;
pub mod webhooks;

pub use error::ApiError;
pub use router::router;
pub use routes::{RouteSpec, route_table};
pub use state::{AppState, AppStateBuilder, HttpLimits};
