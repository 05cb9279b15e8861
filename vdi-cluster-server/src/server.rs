//! Running the control plane: `vdi-cluster serve`.
//!
//! [`serve`] opens the store, settles the secrets, builds the state, binds
//! the listener and calls [`run`]. [`run`] serves the router with the
//! background loop beside it until the shutdown token is cancelled
//! (SIGTERM or Ctrl-C in `serve`), then: stops accepting, lets requests in
//! flight finish, ends event streams, waits (bounded) for detached work
//! such as allocations, and stops the background loop, which gives up its
//! lease so another replica takes over at once.
//!
//! ## Secrets when none are configured
//!
//! No admin or session route is ever open. When `JWT_SECRET` is unset,
//! `serve` generates a random secret for this process and prints a ready
//! ADMIN token (`sub: admin`) and a SERVICE token for the exam application
//! (`sub: exam-app`) once on standard output; when
//! `WORKER_CLUSTER_TOKEN` is unset it generates one and prints it once.
//! So does `WORKER_HEARTBEAT_TOKEN`, the shared token of workers' heartbeats.
//! All die with the process: set them in the environment for anything
//! that must survive a restart or span several replicas. Configured
//! secrets shorter than 32 bytes are refused at start, naming the
//! variable. Anonymous heartbeats (the exam platform's token is optional) need the
//! explicit `--allow-anonymous-heartbeats`, for development, and are
//! logged as a warning at start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::service::{BackgroundConfig, run_background};

use crate::auth::{AuthConfig, MintError, Role, mint_jwt, random_secret};
use crate::client::{ClientBuildError, HttpWorkerClient};
use crate::config::{ConfigError, ServeArgs, TokenArgs};
use crate::grpc::{self, GrpcError};
use crate::install::InstallConfig;
use crate::listener;
use crate::router::router;
use crate::scale_hook::CommandScaleHook;
use crate::state::AppState;
use crate::store::{StoreError, StoreOptions, open_store, redact};
use crate::webhooks::HttpWebhookSender;
use vdi_cluster_node::tls::{Tls, TlsError, TlsSettings};

/// `serve` could not start or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The worker HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// A TLS file or setting is wrong (the message names the flag).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The start-up token could not be signed.
    #[error(transparent)]
    Mint(#[from] MintError),
    /// The endpoint of `--webhook-url` could not be set up.
    #[error("--webhook-url: {0}")]
    Webhook(#[from] vdi_cluster_core::Error),
    /// Binding or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        /// The listen address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Serves `state` on `listener`, with the background loop, until
/// `state.shutdown_token()` is cancelled; then shuts down gracefully,
/// waiting up to `grace` for detached work.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    background: BackgroundConfig,
    grace: Duration,
) -> std::io::Result<()> {
    let shutdown = state.shutdown_token().clone();
    let jobs = tokio::spawn(run_background(
        Arc::clone(state.service().operations()),
        background,
        shutdown.clone().cancelled_owned(),
    ));
    let app = router(state.clone());
    let trusted = state.throttle().config().trusted_proxies.clone();
    let tls = state.tls().and_then(|tls| tls.acceptor(&["http/1.1"]));
    if let Some(tls) = state.tls() {
        tls.watch(shutdown.clone());
    }
    let served = listener::serve(
        listener,
        app,
        state.limits(),
        trusted,
        tls,
        shutdown.clone(),
    )
    .await;
    // Whatever ended the server, stop the background loop too.
    shutdown.cancel();
    state.tasks().close();
    if tokio::time::timeout(grace, state.tasks().wait())
        .await
        .is_err()
    {
        tracing::warn!(
            pending = state.tasks().len(),
            "work still in flight after the shutdown grace period"
        );
    }
    if let Err(e) = jobs.await {
        tracing::warn!(error = %e, "background loop ended abnormally");
    }
    served
}

/// Opens the store, settles the secrets (printing generated ones once) and
/// builds the state of a control plane configured by `args`, stopped by
/// `shutdown`.
pub async fn prepare(
    args: &ServeArgs,
    shutdown: CancellationToken,
) -> Result<AppState, ServeError> {
    let config = args.service_config()?;
    // Files are checked before anything is opened: a wrong path is a
    // start-up error naming its flag.
    let tls = match args.tls.settings()? {
        settings if settings == TlsSettings::default() => None,
        // Operators and the exam application connect without a client
        // certificate: mutual TLS is required of workers' routes only.
        settings => Some(Tls::load_with(&settings, false)?),
    };
    let store_options = StoreOptions {
        redis_prefix: args.redis_prefix.clone(),
        redis_wait_replicas: args.redis_wait_replicas,
        redis_wait_timeout: Duration::from_millis(args.redis_wait_timeout_ms),
    };
    let opened = open_store(&args.store, &store_options).await?;
    tracing::info!(store = %redact(&args.store), "store opened");

    args.check_secrets()?;
    let jwt_secret = match args.jwt_secret() {
        Some(s) => s.to_owned(),
        None => {
            let secret = random_secret();
            let mint = |sub: &str, role: Role| {
                mint_jwt(
                    secret.as_bytes(),
                    sub,
                    &[role],
                    Duration::from_secs(args.admin_token_ttl_sec),
                    args.jwt_issuer.as_deref(),
                    args.jwt_audience.as_deref(),
                )
            };
            let (admin, service) = (
                mint("admin", Role::Admin)?,
                mint("exam-app", Role::Service)?,
            );
            println!(
                "JWT_SECRET is not set: generated a secret for this process only.\n\
                 ADMIN token (sub \"admin\", valid {ttl} s), shown once:\n\n  {admin}\n\n\
                 SERVICE token for the exam application's session API (sub \"exam-app\", valid {ttl} s), shown once:\n\n  {service}\n",
                ttl = args.admin_token_ttl_sec
            );
            secret
        }
    };
    let cluster_token = match args.worker_cluster_token() {
        Some(t) => t.to_owned(),
        None => {
            let token = random_secret();
            println!(
                "WORKER_CLUSTER_TOKEN is not set: generated one for this process only \
                 (workers must be given the same), shown once:\n\n  {token}\n"
            );
            token
        }
    };
    let mut auth = AuthConfig::new().with_jwt_secret(
        jwt_secret.as_bytes(),
        args.jwt_issuer.as_deref(),
        args.jwt_audience.as_deref(),
    );
    match args.worker_heartbeat_token() {
        Some(t) => auth = auth.with_worker_token(t),
        None if args.allow_anonymous_heartbeats => {}
        None => {
            let token = random_secret();
            println!(
                "WORKER_HEARTBEAT_TOKEN is not set: generated one for this process only \
                 (workers send it in x-worker-token: give them WORKER_HEARTBEAT_TOKEN), shown once:\n\n  {token}\n"
            );
            auth = auth.with_worker_token(&token);
        }
    }
    if args.allow_anonymous_heartbeats {
        auth = auth.allow_anonymous_workers();
        tracing::warn!(
            "ANONYMOUS HEARTBEATS ALLOWED (--allow-anonymous-heartbeats): anyone who reaches this server can register a worker and receive the cluster token with its allocations; for development only"
        );
    }
    drop(jwt_secret);

    let client = HttpWorkerClient::with_tls(
        Some(&cluster_token),
        config.worker_call_timeout,
        tls.as_ref(),
    )?;
    let install = install_config(args, cluster_token)?;
    let mut limits = args.limits();
    if let Some(fit) = listener::raise_fd_limit()
        && fit < limits.max_connections
    {
        tracing::warn!(
            configured = limits.max_connections,
            fit,
            "VDI_MAX_CONNECTIONS lowered to what the open-file limit allows"
        );
        limits.max_connections = fit.max(16);
    }
    let sender = if args.webhooks.webhook_allow_private {
        tracing::warn!(
            "webhooks may be delivered to loopback, link-local and private addresses (--webhook-allow-private)"
        );
        HttpWebhookSender::allowing_private_targets()?
    } else {
        HttpWebhookSender::new()?
    };
    let mut builder = AppState::builder(opened.store, Arc::new(client), auth);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let scale_hook = args.scale_command.clone().map(|program| {
        tracing::info!(program = %program.display(), "capacity on schedule through the scale hook");
        Arc::new(CommandScaleHook::new(
            program,
            Duration::from_secs(args.scale_timeout_sec),
        ))
    });
    let state = builder
        .service(|s| match scale_hook {
            Some(hook) => s.config(config).scale_hook(hook),
            None => s.config(config),
        })
        .limits(limits)
        .throttle(args.throttle_config())
        .stats_cache(Duration::from_secs(args.stats_cache_sec))
        .store_name(opened.kind.name())
        .shutdown(shutdown)
        .install(install)
        .webhook_sender(Arc::new(sender))
        .build();
    if let Some((url, secret)) = args.webhooks.endpoint()? {
        let (endpoint, created) = state
            .service()
            .operations()
            .ensure_webhook(url, secret.to_owned())
            .await?;
        if created {
            tracing::info!(webhook = %endpoint.id, "webhook endpoint of --webhook-url created");
        } else if endpoint.secret != secret {
            tracing::warn!(
                webhook = %endpoint.id,
                "an endpoint with --webhook-url exists with another secret; it keeps its own \
                 (delete it with DELETE /api/vdi/webhooks/{{id}} to change the secret)"
            );
        }
    }
    Ok(state)
}

/// Worker installations: the cluster token they need, the public URL (an
/// absolute `http(s)://` URL when set) and this executable as the agent.
fn install_config(args: &ServeArgs, cluster_token: String) -> Result<InstallConfig, ServeError> {
    let public_url = args
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let Some(url) = public_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ConfigError(format!(
            "VDI_PUBLIC_URL must be an http:// or https:// URL, got {url:?}"
        ))
        .into());
    }
    let agent = std::env::current_exe().map_err(|e| {
        ConfigError(format!(
            "cannot locate this executable to serve it as the agent: {e}"
        ))
    })?;
    Ok(InstallConfig::new(
        cluster_token,
        public_url.map(str::to_owned),
        agent,
    ))
}

/// Without `--public-url`, the URL of the specific address `local` the
/// control plane listens on (none for a wildcard address such as
/// `0.0.0.0`: which of the host's addresses workers reach is unknown),
/// `https://` with `--tls-cert`.
pub fn default_public_url(args: &mut ServeArgs, local: SocketAddr) {
    let unset = args
        .public_url
        .as_deref()
        .is_none_or(|u| u.trim().is_empty());
    if unset && !local.ip().is_unspecified() {
        let scheme = if args.tls.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        args.public_url = Some(format!("{scheme}://{local}"));
    }
}

/// `vdi-cluster serve`.
pub async fn serve(mut args: ServeArgs) -> Result<(), ServeError> {
    let shutdown = CancellationToken::new();
    let listener =
        vdi_cluster_node::listen::bind(args.listen).map_err(|source| ServeError::Io {
            addr: args.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(args.listen);
    default_public_url(&mut args, local);
    let state = prepare(&args, shutdown.clone()).await?;
    tracing::info!(listen = %local, store = state.store_name(), "vdi-cluster control plane listening");
    let scheme = state.tls().map_or("http", |_| "https");
    println!(
        "Listening on {scheme}://{local} (store: {})",
        state.store_name()
    );

    let grpc = match args.grpc_listen {
        Some(addr) => Some(spawn_grpc(addr, &state).await?),
        None => None,
    };
    tokio::spawn(async move {
        vdi_cluster_node::shutdown_signal().await;
        tracing::info!("shutdown requested: finishing requests in flight");
        shutdown.cancel();
    });
    let served = run(
        listener,
        state,
        args.background_config(),
        Duration::from_secs(args.shutdown_grace_sec),
    )
    .await
    .map_err(|source| ServeError::Io {
        addr: local,
        source,
    });
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server failed"),
            Err(e) => tracing::warn!(error = %e, "gRPC server ended abnormally"),
            Ok(Ok(())) => {}
        }
    }
    served
}

/// Binds `addr` and serves the gRPC services of `state` there until its
/// shutdown token is cancelled.
async fn spawn_grpc(
    addr: SocketAddr,
    state: &AppState,
) -> Result<tokio::task::JoinHandle<Result<(), GrpcError>>, ServeError> {
    let listener =
        vdi_cluster_node::listen::bind(addr).map_err(|source| ServeError::Io { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(listen = %local, "gRPC listening");
    println!("gRPC listening on grpc://{local}");
    Ok(tokio::spawn(grpc::serve(listener, state.clone())))
}

/// `vdi-cluster token`: prints a signed JWT.
pub fn token(args: &TokenArgs) -> Result<String, MintError> {
    mint_jwt(
        args.jwt_secret.as_bytes(),
        &args.sub,
        &args.roles,
        Duration::from_secs(args.ttl_sec),
        args.issuer.as_deref(),
        args.audience.as_deref(),
    )
}
