//! # vdi-cluster-node
//!
//! The node agent: what runs on each worker node behind `vdi-cluster
//! worker`.
//!
//! One process serves the exam platform's worker-side API and runs the
//! heartbeat agent towards `CONTROL_PLANE_API_BASE`. Every body it serves
//! or sends is `vdi-cluster-protocol`'s. The modules, from the process
//! down:
//!
//! * [`config`] — the `vdi-cluster worker` flags (`args`, with the runbook's
//!   environment variables) and their resolution into a
//!   [`WorkerConfig`] (`resolve`).
//! * [`api`] — the worker-side API (`POST /api/vdi/cluster/allocate|release|prewarm|check`,
//!   `GET /api/vdi/cluster/status`, `/healthz`); [`http`] — its error body
//!   and JSON extractor; [`status`] — the node's own view, converted into
//!   the protocol's `NodeStatus`; [`grpc`] — the same operations over
//!   gRPC (`vdi.cluster.v1.WorkerService`, `--grpc-listen`).
//! * [`agent`] — the heartbeat loop: join when needed, heartbeat, apply the
//!   answers, deregister; [`control_plane`] — its HTTP calls;
//!   [`endpoints`] — which of several control-plane URLs they go to;
//!   [`credential`] — which credential it sends, and the credential file;
//!   [`backoff`] — the intervals and the backoff while calls fail.
//! * [`sessions`] — the session table ([`WorkerNode`]):
//!   idempotent starts and stops, slots, incarnations; [`pool`] — its
//!   prewarm pool; [`admin`] — the admin state from heartbeat answers.
//! * [`tls`] — TLS between hosts (certificate, CA, mutual TLS, reloads),
//!   and [`listen`] — listening sockets sized for an exam's start.
//! * [`provision`] — the [`Provisioner`] trait that starts machines: a
//!   configured program, or a simulation; [`network_policy`] — where the
//!   exam desktops may connect, and the nftables rules that say so;
//!   [`host`] — the host's size and load.
//!
//! Lifecycle: bind, then (in the background) join if a join token is
//! configured, heartbeat at once and every `nextHeartbeatSec`. A control
//! plane that cannot be reached never stops the worker: its sessions keep
//! being served and heartbeats back off. With several control-plane URLs
//! (replicas), a call that finds one dead or failing (5xx) goes to the next
//! right away; the agent backs off only when all failed. On SIGTERM or Ctrl-C the worker
//! deregisters (when `WORKER_DEREGISTER_ON_EXIT`), stops accepting, lets
//! calls in flight finish and exits. Machines started by the command
//! provisioner are left running: they belong to the host, not the process.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use clap::Parser;
//! use tokio_util::sync::CancellationToken;
//! use vdi_cluster_node::config::WorkerArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     worker: WorkerArgs,
//! }
//!
//! let cli = Cli::parse_from(["worker", "--code", "w1", "--cluster-token",
//!                            "cluster-token-0123456789abcdef0123456789",
//!                            "--listen", "127.0.0.1:0"]);
//! let config = cli.worker.resolve()?;
//! let listener = vdi_cluster_node::listen::bind(config.listen)?;
//! let shutdown = CancellationToken::new();
//! vdi_cluster_node::serve(config, listener, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod agent;
pub mod api;
pub mod backoff;
pub mod config;
pub mod control_plane;
pub mod credential;
pub mod endpoints;
pub mod grpc;
pub mod host;
pub mod http;
pub mod listen;
pub mod network_policy;
pub mod pool;
pub mod provision;
pub mod sessions;
pub mod status;
pub mod tls;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::agent::{Agent, AgentConfig};
use self::api::WorkerApi;
use self::config::{ConfigError, ProvisionerConfig, WorkerArgs, WorkerConfig};
use self::host::HostProbe;
use self::provision::{CommandProvisioner, Provisioner, SimulatedProvisioner};
use self::sessions::WorkerNode;
use self::tls::Tls;

/// How long calls in flight may run after shutdown starts.
pub const WORKER_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The worker could not start or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// A TLS file or setting is wrong.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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

/// A worker that is running: its node, agent and address.
#[derive(Debug, Clone)]
pub struct RunningWorker {
    /// The node's state.
    pub node: Arc<WorkerNode>,
    /// The heartbeat agent.
    pub agent: Arc<Agent>,
    /// Where its API listens.
    pub addr: SocketAddr,
    /// Where its gRPC worker service listens (`--grpc-listen`), if served.
    pub grpc_addr: Option<SocketAddr>,
    /// The base URL the control plane calls.
    pub api_base_url: String,
}

fn build(config: &WorkerConfig, addr: SocketAddr, tls: &Tls) -> Result<RunningWorker, WorkerError> {
    let host = HostProbe::new();
    let facts = host.facts();
    let spec = config
        .capacity
        .spec(facts.cpu_cores, facts.memory_mb)
        .map_err(|e| ConfigError(e.to_string()))?;
    if let Some(w) = spec.warning() {
        tracing::warn!(warning = %w, "capacity");
    }
    let mut description = config.description.clone();
    if description.api_base_url.is_empty() {
        description.api_base_url = format!("{}://{addr}", tls.scheme());
    }
    let provisioner: Arc<dyn Provisioner> = match &config.provisioner {
        ProvisionerConfig::Simulated {
            start_latency,
            failure_rate,
            check,
        } => Arc::new(
            SimulatedProvisioner::new(
                config.code.clone(),
                &addr.ip().to_string(),
                *start_latency,
                *failure_rate,
            )
            .with_check(*check),
        ),
        ProvisionerConfig::Command { program, timeout } => Arc::new(CommandProvisioner::new(
            program.clone(),
            config.code.clone(),
            *timeout,
        )),
    };
    if config.network_policy.restrict_internet
        && matches!(config.provisioner, ProvisionerConfig::Simulated { .. })
    {
        tracing::warn!(
            "EXAM_RESTRICT_INTERNET is set, but simulated desktops have no network to restrict"
        );
    }
    let node = Arc::new(
        WorkerNode::new(config.code.clone(), spec.max_sessions(), provisioner)
            .with_network_policy(config.network_policy.clone()),
    );
    let agent_config = AgentConfig {
        code: config.code.clone(),
        description: description.clone(),
        capacity: config.capacity,
        control_planes: config.control_planes(),
        worker_token: config.worker_token.clone(),
        join_token: config.join_token.clone(),
        credential_file: config.credential_file.clone(),
        heartbeat_interval: config.heartbeat_interval,
        backoff_max: config.backoff_max,
        timeout: config.control_plane_timeout,
        report_usage: config.report_usage,
        max_concurrent_starts: config.max_concurrent_starts,
        tls: Some(tls.clone()),
    };
    let agent = Arc::new(Agent::new(agent_config, Arc::clone(&node), host, facts)?);
    tracing::info!(
        code = %config.code,
        cpu_cores = config.capacity.total_cpus.unwrap_or(facts.cpu_cores),
        memory_mb = config.capacity.total_memory_mb.unwrap_or(facts.memory_mb),
        max_sessions = spec.max_sessions(),
        provisioner = node.provisioner_kind(),
        "worker node"
    );
    Ok(RunningWorker {
        node,
        agent,
        addr,
        grpc_addr: None,
        api_base_url: description.api_base_url,
    })
}

/// Starts a worker on `listener`: the API and the agent run in the
/// background until `shutdown` is cancelled, then the worker deregisters
/// (when configured) and stops. Returns the running worker and the task to
/// await for the end.
pub fn start(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<
    (
        RunningWorker,
        tokio::task::JoinHandle<Result<(), WorkerError>>,
    ),
    WorkerError,
> {
    let addr = listener.local_addr().map_err(|source| WorkerError::Io {
        addr: config.listen,
        source,
    })?;
    let tls = Tls::load(&config.tls)?;
    let mut running = build(&config, addr, &tls)?;
    let api = WorkerApi::new(
        Arc::clone(&running.node),
        Arc::clone(&running.agent),
        &config.cluster_token,
    );
    let grpc_listener = match config.grpc_listen {
        Some(addr) => Some(listen::bind(addr).map_err(|source| WorkerError::Io { addr, source })?),
        None => None,
    };
    running.grpc_addr = grpc_listener.as_ref().and_then(|l| l.local_addr().ok());
    let grpc_api = api.clone();
    let app = api::router(api);
    let agent = Arc::clone(&running.agent);
    let deregister = config.deregister_on_exit;
    let task = tokio::spawn(async move {
        let stop_serving = CancellationToken::new();
        tls.watch(stop_serving.clone());
        let server = match tls.acceptor(&["h2", "http/1.1"]) {
            Some(acceptor) => {
                let incoming = tls::TlsIncoming::new(listener, acceptor)
                    .map_err(|source| WorkerError::Io { addr, source })?;
                tokio::spawn(
                    axum::serve(incoming, app)
                        .with_graceful_shutdown(stop_serving.clone().cancelled_owned())
                        .into_future(),
                )
            }
            None => tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop_serving.clone().cancelled_owned())
                    .into_future(),
            ),
        };
        if let Some(listener) = grpc_listener {
            let stop = stop_serving.clone();
            tokio::spawn(async move {
                if let Err(e) = grpc::serve(listener, grpc_api, stop).await {
                    tracing::error!(error = %e, "the gRPC worker service failed");
                }
            });
        }
        let agent_task = tokio::spawn(Arc::clone(&agent).run(shutdown.clone()));
        shutdown.cancelled().await;
        let _ = agent_task.await;
        if deregister {
            match agent.deregister().await {
                Ok(()) => tracing::info!("deregistered from the control plane"),
                Err(e) => tracing::warn!(error = %e, "deregistration failed"),
            }
        }
        stop_serving.cancel();
        match tokio::time::timeout(WORKER_SHUTDOWN_GRACE, server).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(source))) => Err(WorkerError::Io { addr, source }),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the worker API task ended abnormally");
                Ok(())
            }
            Err(_) => {
                tracing::warn!("calls still in flight after the shutdown grace period");
                Ok(())
            }
        }
    });
    Ok((running, task))
}

/// Runs a worker on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let (_, task) = start(config, listener, shutdown)?;
    match task.await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "the worker task failed");
            Ok(())
        }
    }
}

/// `vdi-cluster worker`: binds, prints where it listens, runs until
/// SIGTERM or Ctrl-C.
pub async fn run(args: WorkerArgs) -> Result<(), WorkerError> {
    let config = args.resolve()?;
    let listener = listen::bind(config.listen).map_err(|source| WorkerError::Io {
        addr: config.listen,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let code = config.code.clone();
    let control_plane = config.control_plane.clone();
    let tls_on = config.tls.identity.is_some();
    if matches!(config.provisioner, ProvisionerConfig::Simulated { .. }) {
        tracing::warn!(
            "provisioner: simulated — sessions are kept in memory, no machine is started \
             (set VDI_PROVISION_COMMAND for real machines)"
        );
    }
    let (running, task) = start(config, listener, shutdown.clone())?;
    println!(
        "Worker {code} listening on {}://{} (called at {}); heartbeats to {control_plane}; {} slots",
        if tls_on { "https" } else { "http" },
        running.addr,
        running.api_base_url,
        running.node.max_sessions()
    );
    if let Some(addr) = running.grpc_addr {
        println!("Worker {code} serves vdi.cluster.v1.WorkerService on grpc://{addr}");
    }
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: deregistering and finishing calls in flight");
        shutdown.cancel();
    });
    match task.await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "the worker task failed");
            Ok(())
        }
    }
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
