//! The flags of `vdi-cluster worker`, with the exam platform's `.env.worker`
//! names (`docs/compat/exam-platform-runbook.md`)
//! as their environment fallbacks (clap), and the other sources' names as
//! aliases (`super::aliases`). What they mean together is decided by
//! [`WorkerArgs::resolve`].

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};

use super::{NetworkPolicyArgs, TlsArgs, TokenArgs};

/// How sessions are started on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProvisionerKind {
    /// Sessions kept in memory, with a configurable start latency and
    /// failure rate: demos and tests. Nothing real is started.
    Simulated,
    /// A configured program starts and stops machines (see
    /// [`CommandProvisioner`](crate::provision::CommandProvisioner)).
    Command,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| "must be key=value".to_owned())
}

/// Options of `vdi-cluster worker`: the worker-side API (the exam platform's
/// `/api/vdi/cluster/allocate|release|prewarm`) and the heartbeat agent.
#[derive(Clone, Args)]
#[command(mut_arg("cluster_token", |arg| arg.required(true)))]
pub struct WorkerArgs {
    /// Base URL of the control plane's API, `/api` included, as the exam
    /// platform writes it (`https://cp.example.edu.vn/api`); or several,
    /// comma-separated (replicas on one store): calls go to the one that
    /// last answered and move on to the next when it is down or answers a
    /// 5xx. Or one `grpc://host:port`: the control plane's gRPC service
    /// (`serve --grpc-listen`, as minicloud's); `grpcs://host:port` over
    /// TLS (with `--tls-*` as for `https://`).
    #[arg(
        long = "control-plane",
        env = "CONTROL_PLANE_API_BASE",
        default_value = "http://127.0.0.1:8080/api",
        value_name = "URL[,URL]"
    )]
    pub control_plane: String,

    /// This worker's code (`worker-node-2`): letters, digits, `.`, `_`, `-`.
    #[arg(long, env = "WORKER_CODE", value_name = "CODE")]
    pub code: String,

    /// Display name (default: the code).
    #[arg(long, env = "WORKER_NAME", value_name = "NAME")]
    pub name: Option<String>,

    /// Address the worker-side API listens on (port 0: any free port).
    /// Default: `0.0.0.0:$WORKER_PUBLIC_PORT` when the runbook's
    /// `WORKER_PUBLIC_PORT` is set, else `127.0.0.1:3000`.
    #[arg(long, env = "WORKER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// URL the control plane calls this worker at (the runbook uses
    /// `http://217.216.33.134:3000`). Default: `http://` + the listen
    /// address, which must then not be a wildcard.
    #[arg(long, env = "WORKER_API_BASE_URL", value_name = "URL")]
    pub api_base_url: Option<String>,

    /// Also serve the worker API over gRPC (`vdi.cluster.v1.WorkerService`,
    /// as minicloud's control plane calls a worker; its port is 9091) on
    /// this address. Off by default.
    #[arg(long, env = "WORKER_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,

    /// The cluster token (required here) and the shared heartbeat token.
    #[command(flatten)]
    pub tokens: TokenArgs,

    /// TLS: this worker's certificate, the CA, mutual TLS.
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Join token created by an admin (`POST /api/vdi/join-tokens`): the
    /// worker registers with it and receives its own credential.
    #[arg(
        long,
        env = "WORKER_JOIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub join_token: Option<String>,

    /// File keeping the credential received by joining (replaced by each
    /// rotation), so a restart needs no new join token (written with mode
    /// 0600).
    #[arg(long, env = "WORKER_CREDENTIAL_FILE", value_name = "PATH")]
    pub credential_file: Option<PathBuf>,

    /// CPU cores kept for the host (the runbook's: 1).
    #[arg(
        long,
        env = "WORKER_RESERVED_CPUS",
        default_value_t = 1.0,
        value_name = "CORES"
    )]
    pub reserved_cpus: f64,

    /// Memory kept for the host, MB (the runbook's: 1024).
    #[arg(
        long,
        env = "WORKER_RESERVED_MEMORY_MB",
        default_value_t = 1024,
        value_name = "MB"
    )]
    pub reserved_memory_mb: u64,

    /// CPU cores of one session's VM (alias `EXAM_VM_CPUS`); default 1.5.
    #[arg(long, env = "VM_CPU_CORES", value_name = "CORES")]
    pub vm_cpus: Option<f64>,

    /// Memory of one session's VM, MB (alias `EXAM_VM_MEMORY_MB`); default
    /// 2048.
    #[arg(long, env = "VM_MEMORY_MB", value_name = "MB")]
    pub vm_memory_mb: Option<u64>,

    /// CPU cores of the node (default: the host's, from sysinfo).
    #[arg(long, env = "WORKER_TOTAL_CPUS", value_name = "CORES")]
    pub total_cpus: Option<f64>,

    /// Memory of the node, MB (default: the host's, from sysinfo).
    #[arg(long, env = "WORKER_TOTAL_MEMORY_MB", value_name = "MB")]
    pub total_memory_mb: Option<u64>,

    /// Seconds between heartbeats until the control plane's answer says
    /// otherwise (`nextHeartbeatSec`).
    #[arg(
        long,
        env = "HEARTBEAT_INTERVAL_SEC",
        default_value_t = 20.0,
        value_name = "SEC"
    )]
    pub heartbeat_interval_sec: f64,

    /// Longest wait between two attempts while heartbeats fail (exponential
    /// backoff with jitter up to this).
    #[arg(
        long,
        env = "HEARTBEAT_BACKOFF_MAX_SEC",
        default_value_t = 60.0,
        value_name = "SEC"
    )]
    pub heartbeat_backoff_max_sec: f64,

    /// Timeout of one call to the control plane, milliseconds.
    #[arg(long, env = "CONTROL_PLANE_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000), value_name = "MS")]
    pub control_plane_timeout_ms: u64,

    /// Zone, for placement constraints and per-zone statistics.
    #[arg(long, env = "WORKER_ZONE", value_name = "ZONE")]
    pub zone: Option<String>,

    /// A label `key=value`; repeat, or comma-separate in `WORKER_LABELS`.
    #[arg(long = "label", env = "WORKER_LABELS", value_delimiter = ',',
          value_parser = parse_label, value_name = "KEY=VALUE")]
    pub labels: Vec<(String, String)>,

    /// A capability (`gpu`); repeat, or comma-separate in
    /// `WORKER_CAPABILITIES`.
    #[arg(
        long = "capability",
        env = "WORKER_CAPABILITIES",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub capabilities: Vec<String>,

    /// How sessions are started: `command` (a program, see
    /// `--provision-command`) or `simulated`. Default: `command` when a
    /// command is configured, else `simulated` (with a warning).
    #[arg(long, env = "VDI_PROVISIONER", value_enum, value_name = "KIND")]
    pub provisioner: Option<ProvisionerKind>,

    /// Program run for allocate, release, prewarm, discard and a
    /// rehearsal's check (see the worker docs for its environment and
    /// output).
    #[arg(long, env = "VDI_PROVISION_COMMAND", value_name = "PATH")]
    pub provision_command: Option<PathBuf>,

    /// The exam desktops' network policy, handed to the provisioning
    /// program (the exam platform's `EXAM_RESTRICT_INTERNET` and
    /// `EXAM_ALLOWED_*`).
    #[command(flatten)]
    pub network: NetworkPolicyArgs,

    /// Longest run of the provisioning program, seconds.
    #[arg(long, env = "VDI_PROVISION_TIMEOUT_SEC", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3_600), value_name = "SEC")]
    pub provision_timeout_sec: u64,

    /// Simulated provisioning: time to start one session, milliseconds.
    #[arg(long, env = "VDI_SIM_START_LATENCY_MS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=600_000), value_name = "MS")]
    pub sim_start_latency_ms: u64,

    /// Simulated provisioning: share of starts that fail (0 to 1).
    #[arg(
        long,
        env = "VDI_SIM_FAILURE_RATE",
        default_value_t = 0.0,
        value_name = "RATE"
    )]
    pub sim_failure_rate: f64,

    /// Simulated provisioning: how a rehearsal's check answers — `ok`,
    /// `fail` (the test desktop does not start), `slow` (it starts
    /// `--sim-check-slow-ms` late), `image-missing`, or `allow-list-fails`
    /// (the network allow-list check fails).
    #[arg(long, env = "VDI_SIM_CHECK", default_value = "ok", value_name = "ANSWER",
          value_parser = ["ok", "fail", "slow", "image-missing", "allow-list-fails"])]
    pub sim_check: String,

    /// Simulated provisioning: how much longer than a start a `slow`
    /// check takes, milliseconds.
    #[arg(long, env = "VDI_SIM_CHECK_SLOW_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(0..=600_000), value_name = "MS")]
    pub sim_check_slow_ms: u64,

    /// Report the host's CPU, memory and disk usage in heartbeats (the
    /// control plane marks a worker unhealthy above SkyPanelV2's thresholds).
    /// Turn off when several workers share one host (demos, tests).
    #[arg(long, env = "WORKER_REPORT_USAGE", default_value_t = true,
          action = ArgAction::Set, value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub report_usage: bool,

    /// How many desktops this node may be starting at once, reported in
    /// every heartbeat; the control plane's paced starts never run more
    /// on it (and lower it when its starts slow down). Default: a quarter
    /// of its slots, rounded up, between 1 and 8.
    #[arg(long, env = "VDI_MAX_CONCURRENT_STARTS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_concurrent_starts: Option<u32>,

    /// Deregister from the control plane on SIGTERM / Ctrl-C.
    #[arg(long, env = "WORKER_DEREGISTER_ON_EXIT", default_value_t = true,
          action = ArgAction::Set, value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub deregister_on_exit: bool,
}

impl fmt::Debug for WorkerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerArgs")
            .field("control_plane", &self.control_plane)
            .field("code", &self.code)
            .field("listen", &self.listen)
            .field("api_base_url", &self.api_base_url)
            .field("join_token", &self.join_token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}
