//! `vdi-cluster demo`: a control plane and N simulated workers in one
//! process, on loopback ports, so a newcomer sees a live cluster in
//! seconds. It prints the URLs (the operators' page's too, with how to sign
//! in), an ADMIN token, the cluster token and a few
//! `curl` lines; Ctrl-C (or SIGTERM) deregisters the workers and stops
//! everything.
//!
//! The control plane is the one `vdi-cluster serve` runs (in-memory store
//! by default), with heartbeats every `--heartbeat-interval-sec` (5 s), a
//! TTL of three intervals and a hard timeout of twelve, so failover is
//! visible quickly. Workers are `vdi-cluster worker`s with the simulated
//! provisioner and sizes taken in turn from the exam platform's runbook (8
//! cores / 12 GiB: 4 slots), a 16-core and a 32-core node, with the
//! runbook's VM profile.
//! Once they have joined, the demo books an exam on them (see [`exam`]).

pub mod exam;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::{WorkerDescription, WorkerId};

use crate::auth::{Role, mint_jwt, random_secret};
use crate::config::{ConfigError, ServeArgs};
use crate::server::{self, ServeError};
use vdi_cluster_node::config::{CapacityConfig, ProvisionerConfig, WorkerConfig};
use vdi_cluster_node::tls::TlsSettings;
use vdi_cluster_node::{self as worker, RunningWorker, WorkerError};

/// Log filter of the demo when `RUST_LOG` is unset: warnings, and cluster
/// events.
pub const DEFAULT_LOG_FILTER: &str = "warn,vdi_cluster::events=info";
/// Lifetime of the printed ADMIN token.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// Node sizes (cores, MB) given to the workers in turn.
pub const NODE_SIZES: &[(f64, u64)] = &[(8.0, 12_288), (16.0, 32_768), (32.0, 65_536)];

/// Options of `vdi-cluster demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulated workers to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub workers: u32,

    /// Address of the control plane (a loopback address).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Storage backend of the control plane: `memory`, `redis://…` or
    /// `postgres://…`.
    #[arg(long, default_value = "memory", value_name = "URL")]
    pub store: String,

    /// Key prefix on Redis.
    #[arg(long, default_value = "vdi-demo", value_name = "PREFIX")]
    pub redis_prefix: String,

    /// Heartbeat interval, seconds (TTL: three intervals; offline: twelve).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub heartbeat_interval_sec: u64,

    /// Time a simulated session takes to start, milliseconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub sim_start_latency_ms: u64,
}

/// The demo could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Bad options.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The control plane could not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A worker could not start.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

fn serve_args(
    args: &DemoArgs,
    jwt_secret: &str,
    cluster_token: &str,
    worker_token: &str,
) -> Result<ServeArgs, ConfigError> {
    let interval = args.heartbeat_interval_sec;
    let argv = [
        "demo".to_owned(),
        "--listen".into(),
        args.listen.to_string(),
        "--store".into(),
        args.store.clone(),
        "--redis-prefix".into(),
        args.redis_prefix.clone(),
        "--jwt-secret".into(),
        jwt_secret.to_owned(),
        "--worker-cluster-token".into(),
        cluster_token.to_owned(),
        "--worker-heartbeat-token".into(),
        worker_token.to_owned(),
        "--heartbeat-interval-sec".into(),
        interval.to_string(),
        "--heartbeat-ttl-sec".into(),
        (3 * interval).to_string(),
        "--offline-timeout-sec".into(),
        (12 * interval).to_string(),
        "--reconcile-interval-sec".into(),
        (2 * interval).to_string(),
        "--shutdown-grace-sec".into(),
        "5".into(),
    ];
    ServeOnly::try_parse_from(argv)
        .map(|s| s.args)
        .map_err(|e| ConfigError(e.to_string()))
}

fn worker_config(
    args: &DemoArgs,
    index: usize,
    control_plane: &str,
    cluster_token: &str,
    worker_token: &str,
) -> Result<WorkerConfig, ConfigError> {
    let code = WorkerId::parse("code", format!("worker-{}", index + 1))
        .map_err(|e| ConfigError(e.to_string()))?;
    let (cpus, memory_mb) = NODE_SIZES[index % NODE_SIZES.len()];
    Ok(WorkerConfig {
        description: WorkerDescription {
            name: format!("Demo worker {}", index + 1),
            api_base_url: String::new(),
            zone: Some(
                if index.is_multiple_of(2) {
                    "zone-a"
                } else {
                    "zone-b"
                }
                .to_owned(),
            ),
            ..WorkerDescription::default()
        },
        code,
        control_plane: control_plane.to_owned(),
        listen: SocketAddr::new(args.listen.ip(), 0),
        grpc_listen: None,
        cluster_token: cluster_token.to_owned(),
        worker_token: Some(worker_token.to_owned()),
        join_token: None,
        credential_file: None,
        capacity: CapacityConfig {
            reserved_cpus: 1.0,
            reserved_memory_mb: 1024,
            vm_cpus: 1.5,
            vm_memory_mb: 2048,
            total_cpus: Some(cpus),
            total_memory_mb: Some(memory_mb),
        },
        heartbeat_interval: Duration::from_secs(args.heartbeat_interval_sec),
        backoff_max: Duration::from_secs(args.heartbeat_interval_sec),
        control_plane_timeout: Duration::from_secs(5),
        provisioner: ProvisionerConfig::Simulated {
            start_latency: Duration::from_millis(args.sim_start_latency_ms),
            failure_rate: 0.0,
            check: Default::default(),
        },
        network_policy: Default::default(),
        // The workers share this host: its load says nothing about them.
        report_usage: false,
        // Deregistration needs a worker's own credential; the demo's
        // workers share the worker token, and all stop together anyway.
        deregister_on_exit: false,
        max_concurrent_starts: None,
        tls: TlsSettings::default(),
    })
}

/// The credentials the banner prints.
struct Tokens {
    admin: String,
    service: String,
    cluster: String,
}

fn banner(
    args: &DemoArgs,
    url: &str,
    store: &str,
    workers: &[RunningWorker],
    tokens: &Tokens,
    demo_exam: &exam::DemoExam,
) -> String {
    let Tokens {
        admin,
        service,
        cluster: cluster_token,
    } = tokens;
    let mut out = format!(
        "\nvdi-cluster demo: a control plane and {} simulated worker(s) on this machine.\n\n",
        workers.len()
    );
    out.push_str(&format!(
        "  control plane   {url}   (store: {store}, heartbeats every {} s)\n",
        args.heartbeat_interval_sec
    ));
    for (i, w) in workers.iter().enumerate() {
        let (cpus, memory) = NODE_SIZES[i % NODE_SIZES.len()];
        out.push_str(&format!(
            "  {:<15} {}   {cpus} cores / {memory} MB → {} slots\n",
            w.node.code().as_str(),
            w.api_base_url,
            w.node.max_sessions()
        ));
    }
    out.push_str(&format!(
        "\nCredentials (this run only): an ADMIN token, the exam application's SERVICE token,\n\
         and the cluster token the control plane sends to workers:\n\n  \
         export TOKEN={admin}\n  export SERVICE_TOKEN={service}\n  export CLUSTER_TOKEN={cluster_token}\n"
    ));
    out.push_str(&format!(
        "\nThe operators' page: {url}/admin/\n  \
         Sign in by pasting the ADMIN token above (the value of TOKEN, starting eyJ);\n  \
         it is valid for this run only.\n"
    ));
    out.push_str(&format!(
        "\nTry:\n\n  curl -s {url}/api/vdi/workers/summary -H \"authorization: Bearer $TOKEN\"\n  \
         curl -s -X POST {url}/api/vdi/sessions -H \"authorization: Bearer $SERVICE_TOKEN\" \\\n       \
         -H 'content-type: application/json' -d '{{\"examId\":\"exam-1\",\"userId\":\"student-1\"}}'\n  \
         curl -s {url}/api/vdi/cluster/distribution -H \"authorization: Bearer $TOKEN\"\n  \
         curl -s -X PATCH {url}/api/vdi/workers/worker-1 -H \"authorization: Bearer $TOKEN\" \\\n       \
         -H 'content-type: application/json' -d '{{\"isDraining\":true}}'\n  \
         curl -sN {url}/api/vdi/events -H \"authorization: Bearer $TOKEN\"\n"
    ));
    let slots = workers.iter().map(|w| w.node.max_sessions()).sum();
    out.push_str(&exam::banner(url, demo_exam, slots));
    out.push_str(&format!(
        "\nOpenAPI: {url}/api/openapi.json   Metrics: {url}/metrics\n\n\
         Ctrl-C stops everything.\n"
    ));
    out
}

/// `vdi-cluster demo`.
pub async fn run(args: DemoArgs) -> Result<(), DemoError> {
    if !args.listen.ip().is_loopback() {
        return Err(ConfigError(format!(
            "the demo listens on loopback addresses only, not {}",
            args.listen
        ))
        .into());
    }
    let jwt_secret = random_secret();
    let cluster_token = random_secret();
    let worker_token = random_secret();
    let mint = |sub: &str, role: Role| {
        mint_jwt(
            jwt_secret.as_bytes(),
            sub,
            &[role],
            DEMO_TOKEN_TTL,
            None,
            None,
        )
        .map_err(ServeError::from)
    };
    let tokens = Tokens {
        admin: mint("admin", Role::Admin)?,
        service: mint("exam-app", Role::Service)?,
        cluster: cluster_token.clone(),
    };
    let mut serve = serve_args(&args, &jwt_secret, &cluster_token, &worker_token)?;

    let cp_shutdown = CancellationToken::new();
    let listener = vdi_cluster_node::listen::bind(args.listen).map_err(|source| DemoError::Io {
        addr: args.listen,
        source,
    })?;
    let cp_addr = listener.local_addr().unwrap_or(args.listen);
    server::default_public_url(&mut serve, cp_addr);
    let state = server::prepare(&serve, cp_shutdown.clone()).await?;
    let url = format!("http://{cp_addr}");
    let store = state.store_name().to_owned();
    let service = std::sync::Arc::clone(state.service());
    let control_plane = tokio::spawn(server::run(
        listener,
        state,
        serve.background_config(),
        Duration::from_secs(serve.shutdown_grace_sec),
    ));

    let workers_shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..args.workers as usize {
        let config = worker_config(
            &args,
            i,
            &format!("{url}/api"),
            &cluster_token,
            &worker_token,
        )?;
        let listener =
            vdi_cluster_node::listen::bind(config.listen).map_err(|source| DemoError::Io {
                addr: config.listen,
                source,
            })?;
        let (running, task) = worker::start(config, listener, workers_shutdown.clone())?;
        workers.push(running);
        tasks.push(task);
    }

    // Wait (bounded) for every worker's first heartbeat.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let healthy = service
            .operations()
            .summary()
            .await
            .map(|s| s.healthy_workers)
            .unwrap_or(0);
        if healthy as usize >= workers.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let demo_exam = exam::book(&service).await;
    println!(
        "{}",
        banner(&args, &url, &store, &workers, &tokens, &demo_exam)
    );

    vdi_cluster_node::shutdown_signal().await;
    println!("Stopping: workers, then the control plane.");
    workers_shutdown.cancel();
    for task in tasks {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "a demo worker failed"),
            Err(e) => tracing::warn!(error = %e, "a demo worker task failed"),
            Ok(Ok(())) => {}
        }
    }
    cp_shutdown.cancel();
    match control_plane.await {
        Ok(Err(source)) => Err(DemoError::Io {
            addr: cp_addr,
            source,
        }),
        Ok(Ok(())) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "the demo control plane task failed");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DemoArgs {
        DemoArgs {
            workers: 3,
            listen: "127.0.0.1:0".parse().unwrap(),
            store: "memory".into(),
            redis_prefix: "vdi-demo".into(),
            heartbeat_interval_sec: 5,
            sim_start_latency_ms: 300,
        }
    }

    #[test]
    fn the_control_plane_uses_short_demo_timings() {
        let serve = serve_args(&args(), "s".repeat(32).as_str(), "c", "w").unwrap();
        let config = serve.service_config().unwrap();
        assert_eq!(config.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(config.heartbeat_ttl, Duration::from_secs(15));
        assert_eq!(config.offline_after, Duration::from_secs(60));
    }

    #[test]
    fn workers_take_the_demo_sizes_in_turn() {
        let a = args();
        let c = worker_config(&a, 0, "http://127.0.0.1:1/api", "c", "w").unwrap();
        assert_eq!(c.code.as_str(), "worker-1");
        assert_eq!(c.capacity.spec(1.0, 1).unwrap().max_sessions(), 4);
        let c = worker_config(&a, 3, "http://127.0.0.1:1/api", "c", "w").unwrap();
        assert_eq!(c.code.as_str(), "worker-4");
        assert_eq!(c.capacity.total_cpus, Some(8.0));
    }
}
