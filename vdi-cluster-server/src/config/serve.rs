//! Options of `vdi-cluster serve` (what they resolve to: `resolve.rs`).

use std::net::{IpAddr, SocketAddr};

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};
use vdi_cluster_core::{FailurePolicy, SchedulingPolicy};
use vdi_cluster_node::config::{TlsArgs, TokenArgs};

use super::WebhookArgs;

fn parse_failure_policy(text: &str) -> Result<FailurePolicy, String> {
    FailurePolicy::parse("failure policy", text).map_err(|e| e.message)
}

fn parse_scheduling(text: &str) -> Result<SchedulingPolicy, String> {
    SchedulingPolicy::parse("scheduling policy", text).map_err(|e| e.message)
}

/// Options of `vdi-cluster serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "VDI_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// Address of the gRPC service (minicloud's WorkerManagementService,
    /// health, reflection); off unless set (minicloud uses port 9090).
    #[arg(long, env = "VDI_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,

    /// The URL workers reach this control plane at (`http://cp:8080`),
    /// written into installation scripts; unset: `http://` and the
    /// `--listen` address when it is a specific one (with `0.0.0.0` no
    /// installation script is served).
    #[arg(long, env = "VDI_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Storage backend: `memory`, `redis://…`, `redis+sentinel://host,…/master`
    /// or `postgres://…`.
    #[arg(long, env = "VDI_STORE", default_value = "memory", value_name = "URL")]
    pub store: String,

    /// Key prefix on Redis (several clusters may share one server).
    #[arg(
        long,
        env = "VDI_REDIS_PREFIX",
        default_value = "vdi",
        value_name = "PREFIX"
    )]
    pub redis_prefix: String,

    /// Replicas that must acknowledge every Redis step (Redis' `WAIT`)
    /// before it counts as done; 0 (the default) waits for none, and a
    /// failover may then lose the last acknowledged writes (the fleet's
    /// heartbeats repair them).
    #[arg(
        long,
        env = "VDI_REDIS_WAIT_REPLICAS",
        default_value_t = 0,
        value_name = "N"
    )]
    pub redis_wait_replicas: u32,

    /// How long a Redis step waits for `--redis-wait-replicas` replicas
    /// before it fails as unavailable (the write stays on the primary).
    #[arg(
        long,
        env = "VDI_REDIS_WAIT_TIMEOUT_MS",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=60_000),
        value_name = "MS"
    )]
    pub redis_wait_timeout_ms: u64,

    /// HS256 secret of admin JWTs. Unset: a random one is generated for
    /// this process and a ready ADMIN token is printed once.
    #[arg(
        long,
        env = "JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: Option<String>,

    /// Required `iss` of JWTs (unchecked when unset).
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of JWTs (unchecked when unset).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// The cluster token and the shared heartbeat token (the same flags
    /// as `worker`'s).
    #[command(flatten)]
    pub tokens: TokenArgs,

    /// Accept heartbeats and registrations without `x-worker-token`: for
    /// development only (anyone who reaches the server can then register a
    /// worker and receive the cluster token with its allocations). Logged
    /// as a warning at start.
    #[arg(long, env = "VDI_ALLOW_ANONYMOUS_HEARTBEATS", default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub allow_anonymous_heartbeats: bool,

    /// Seconds without heartbeat before a worker is unreachable.
    #[arg(long, env = "WORKER_HEARTBEAT_TTL_SEC", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub heartbeat_ttl_sec: u64,

    /// Seconds without heartbeat before a worker is offline and its
    /// sessions go to the failure policy (at least the TTL).
    #[arg(long, env = "WORKER_OFFLINE_TIMEOUT_SEC", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub offline_timeout_sec: u64,

    /// Lifetime of a worker's own credential (30 days); the node agent
    /// rotates it at two thirds.
    #[arg(long, env = "WORKER_CREDENTIAL_TTL_SEC", default_value_t = 2_592_000,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub worker_credential_ttl_sec: u64,

    /// How long a rotated worker credential stays accepted (1 hour; never
    /// past its own expiry).
    #[arg(long, env = "WORKER_CREDENTIAL_OVERLAP_SEC", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub worker_credential_overlap_sec: u64,

    /// How long this replica accepts a worker's credential (or the shared
    /// worker token for a worker without one) from its last read of it
    /// instead of reading it again (2000 ms; 0 reads it on every request).
    /// A refusal always reads it; a revocation or reset made through
    /// another replica holds here within this time, through this one at
    /// once.
    #[arg(long, env = "WORKER_CREDENTIAL_CACHE_MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub worker_credential_cache_ms: u64,

    /// Lifetime of an exam's sticky worker.
    #[arg(long, env = "WORKER_STICKY_EXAM_TTL_SEC", default_value_t = 21_600,
          value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub sticky_exam_ttl_sec: u64,

    /// Worker allocate calls per allocation before giving up.
    #[arg(long, env = "WORKER_ALLOCATE_RETRY_COUNT", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub allocate_retry_count: u32,

    /// Timeout of one call to a worker, milliseconds.
    #[arg(long, env = "CLUSTER_API_TIMEOUT_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub cluster_api_timeout_ms: u64,

    /// Run the periodic reconcile (stale dispatch cleanup).
    #[arg(long, env = "WORKER_DISPATCH_CLEANUP_ENABLED", default_value_t = true,
          action = ArgAction::Set, value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub dispatch_cleanup_enabled: bool,

    /// Age after which an active dispatch with no live session is removed.
    #[arg(long, env = "WORKER_DISPATCH_STALE_SEC", default_value_t = 21_600,
          value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub dispatch_stale_sec: u64,

    /// Dispatches read per scan page of a reconcile pass (a step of the
    /// leader's pass reads 50 pages).
    #[arg(long, env = "WORKER_DISPATCH_SCAN_COUNT", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub dispatch_scan_count: u64,

    /// Seconds after which a reservation whose worker never answered is
    /// reclaimed.
    #[arg(long, env = "VDI_ALLOCATE_TIMEOUT_SEC", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub allocate_timeout_sec: u64,

    /// How long a worker's report of a session must trail its record before
    /// the record is repaired toward it (a reservation it runs confirmed, a
    /// copy settled elsewhere stopped), seconds; never less than the worker
    /// call timeout.
    #[arg(long, env = "VDI_ADOPTION_GRACE_SEC", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub adoption_grace_sec: u64,

    /// How long after its activation a session missing from its worker's
    /// report of live sessions is still kept (a report the worker made
    /// before the desktop started may arrive after the confirmation),
    /// seconds. Past it, a report that omits the session frees its slot.
    #[arg(long, env = "VDI_LIVE_SESSION_GRACE_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub live_session_grace_sec: u64,

    /// How long a duplicate allocation waits for the same session's
    /// allocation in flight before answering 409, milliseconds. Unset:
    /// `CLUSTER_API_TIMEOUT_MS × WORKER_ALLOCATE_RETRY_COUNT`.
    #[arg(long, env = "VDI_COALESCE_WAIT_MS",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub coalesce_wait_ms: Option<u64>,

    /// Share of the schedulable slots exam admission keeps free, percent.
    #[arg(long, env = "VDI_EXAM_HEADROOM_PERCENT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(0..=90))]
    pub exam_headroom_percent: u32,

    /// A student waiting in a booked exam's queue who has not polled (`GET`
    /// or a repeated `POST` of the session) for this long leaves the queue,
    /// seconds.
    #[arg(long, env = "VDI_QUEUE_ABANDON_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(5..=86_400))]
    pub queue_abandon_sec: u64,

    /// How long after a student's own end (the exam's `endsAt`, or later
    /// with an extension) the leader releases the desktop of a booked
    /// exam's session, seconds (`session.expiring` is written five minutes
    /// before the end, `session.expired` at the release).
    #[arg(long, env = "VDI_SESSION_GRACE_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub session_grace_sec: u64,

    /// A student's lost time (the disruption ledger) that raises the
    /// `session.disrupted` webhook, once at each multiple it reaches,
    /// seconds; 0 never raises it.
    #[arg(long, env = "VDI_DISRUPTION_ALERT_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub disruption_alert_sec: u64,

    /// A desktop that takes longer than this to start is a `slowStart`
    /// entry in the student's disruption ledger, seconds; 0 records none.
    #[arg(long, env = "VDI_SLOW_START_SEC", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub slow_start_sec: u64,

    /// The scale hook: a program the leader runs with `VDI_ACTION=scale_up`
    /// when booked exams will be short of slots, and `scale_down` when the
    /// workers it started are drained and no longer needed (its JSON
    /// contract: docs/capacity.md). Unset: no capacity is asked for.
    #[arg(long, env = "VDI_SCALE_COMMAND", value_name = "PATH")]
    pub scale_command: Option<std::path::PathBuf>,

    /// How long before a booked exam's prewarm lead begins the scale hook
    /// is asked for the slots it would be short, seconds.
    #[arg(long, env = "VDI_SCALE_LEAD_SEC", default_value_t = 1_800,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub scale_lead_sec: u64,

    /// The first wait before a failed call of the scale hook is repeated
    /// (doubled per attempt, up to 64 times), seconds.
    #[arg(long, env = "VDI_SCALE_RETRY_SEC", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub scale_retry_sec: u64,

    /// Longest run of the scale hook before it is killed (and the call
    /// repeated later), seconds.
    #[arg(long, env = "VDI_SCALE_TIMEOUT_SEC", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub scale_timeout_sec: u64,

    /// How long before a booked exam's prewarm lead begins the leader
    /// rehearses it by itself, once (docs/rehearsal.md), seconds; 0 (the
    /// default): only when an operator asks.
    #[arg(long, env = "VDI_REHEARSAL_LEAD_SEC", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub rehearsal_lead_sec: u64,

    /// A rehearsal's test desktop that takes longer than this to start
    /// makes its worker `slow`, seconds.
    #[arg(long, env = "VDI_REHEARSAL_SLOW_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub rehearsal_slow_sec: u64,

    /// Longest check of one worker in a rehearsal (the test desktop's
    /// start and stop), seconds.
    #[arg(long, env = "VDI_REHEARSAL_TIMEOUT_SEC", default_value_t = 180,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub rehearsal_timeout_sec: u64,

    /// Slots per zone the scale hook may add that exam admission counts: a
    /// booking beyond the fleet is then accepted with `fits: "with
    /// scale-up"` and watched until its workers join. 0: off. Needs
    /// --scale-command.
    #[arg(long, env = "VDI_ADMISSION_COUNTS_SCALABLE", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub admission_counts_scalable: u32,

    /// Prewarm calls in flight.
    #[arg(long, env = "VDI_PREWARM_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub prewarm_concurrency: u64,

    /// Paced starts: every start of a desktop (a placement, a prewarmed
    /// machine) first takes one of its worker's start permits, held in
    /// the store, so no worker starts more at once than its
    /// `--max-concurrent-starts` (adapted down from its measured start
    /// times); a booked exam's student whose start waits is answered 202
    /// `starting` (docs/paced-starts.md). On by default; `false` starts
    /// every desktop at once and answers every request when its desktop
    /// is up.
    #[arg(long, env = "VDI_PACE_STARTS", default_value_t = true,
          action = ArgAction::Set, value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub pace_starts: bool,

    /// The start time paced starts are kept within, milliseconds: a
    /// worker's start limit falls while its predicted start takes longer.
    /// Default: half of CLUSTER_API_TIMEOUT_MS.
    #[arg(long, env = "VDI_START_TARGET_MS",
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub start_target_ms: Option<u64>,

    /// Most machines one prewarm starts.
    #[arg(long, env = "VDI_PREWARM_MAX", default_value_t = 80,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub prewarm_max: u32,

    /// What happens to sessions of failed workers: automatic, manual, none.
    #[arg(long, env = "WORKER_FAILURE_POLICY", default_value = "automatic",
          value_parser = parse_failure_policy)]
    pub failure_policy: FailurePolicy,

    /// Repeat `migration.manual_required` this often while sessions the
    /// `manual` policy orphaned remain, seconds; 0 alerts once only.
    #[arg(long, env = "VDI_MANUAL_MIGRATION_REMIND_SEC", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(0..=604_800))]
    pub manual_migration_remind_sec: u64,

    /// Waiting students at which an exam's waiting room is reported
    /// forming (`exam.queue_forming`, once until it empties).
    #[arg(long, env = "VDI_QUEUE_ALERT_AT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue_alert_at: u32,

    /// Placement order after sticky and affinity: spread or pack.
    #[arg(long, env = "WORKER_SCHEDULING_POLICY", default_value = "spread",
          value_parser = parse_scheduling)]
    pub scheduling_policy: SchedulingPolicy,

    /// Heartbeat interval the answer asks workers to use, seconds.
    #[arg(long, env = "HEARTBEAT_INTERVAL_SEC", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub heartbeat_interval_sec: u64,

    /// No migration when at least this percentage of workers is silent.
    #[arg(long, env = "WORKER_MASS_FAILURE_PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub mass_failure_percent: u32,

    /// This replica's name as holder of the background lease. Unset: the
    /// host name and the listen address, so a control plane restarted in
    /// place takes its own lease back at once instead of waiting for it to
    /// expire.
    #[arg(long, env = "VDI_REPLICA_ID", value_name = "NAME")]
    pub replica_id: Option<String>,

    /// Reconcile period, seconds (the exam platform's: 60).
    #[arg(long, env = "WORKER_RECONCILE_INTERVAL_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub reconcile_interval_sec: u64,

    /// Longest time to answer a request, seconds (408 past it).
    #[arg(long, env = "VDI_REQUEST_TIMEOUT_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub request_timeout_sec: u64,

    /// Largest request body, bytes (413 past it).
    #[arg(long, env = "VDI_BODY_LIMIT_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u64).range(1_024..=67_108_864))]
    pub body_limit_bytes: u64,

    /// Longest time a new connection may take to send its request head,
    /// seconds.
    #[arg(long, env = "VDI_HEADER_READ_TIMEOUT_SEC", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_read_timeout_sec: u64,

    /// Close a connection idle (no bytes either way) this long, seconds.
    #[arg(long, env = "VDI_IDLE_TIMEOUT_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub idle_timeout_sec: u64,

    /// Most connections open at once (also capped by the open-file limit).
    #[arg(long, env = "VDI_MAX_CONNECTIONS", default_value_t = 4_096,
          value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub max_connections: u64,

    /// Most connections open at once from one peer address (never more
    /// than half of VDI_MAX_CONNECTIONS; trusted proxies are exempt): one
    /// client cannot starve the rest. Raise it when the exam application
    /// sends more concurrent requests than this from one address. The
    /// gRPC listener (`--grpc-listen`) holds peers to the same cap.
    #[arg(long, env = "VDI_MAX_CONNECTIONS_PER_PEER", default_value_t = 1_024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections_per_peer: u64,

    /// Failed authentications (401s) one peer may have within the window;
    /// past them it is answered 429 until the window ends.
    #[arg(long, env = "VDI_AUTH_FAILURE_LIMIT", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failure_limit: u32,

    /// The window of the failure count, seconds, from a peer's first
    /// failure in it.
    #[arg(long, env = "VDI_AUTH_FAILURE_WINDOW_SEC", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_failure_window_sec: u64,

    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed
    /// (repeat, or a comma-separated list); the peer of a request is
    /// otherwise its connection's address.
    #[arg(
        long = "trusted-proxy",
        env = "VDI_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "IP"
    )]
    pub trusted_proxies: Vec<IpAddr>,

    /// Lifetime of the ADMIN token printed when JWT_SECRET is unset.
    #[arg(long, env = "VDI_ADMIN_TOKEN_TTL_SEC", default_value_t = 43_200,
          value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub admin_token_ttl_sec: u64,

    /// How long this replica keeps the cluster statistics before reading
    /// the store again, seconds (SkyPanelV2 caches 30);
    /// answers say so in `Cache-Control` and carry an `ETag`. 0: every
    /// request reads the store.
    #[arg(long, env = "VDI_STATS_CACHE_SEC", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub stats_cache_sec: u64,

    /// On shutdown, how long to wait for work in flight, seconds.
    #[arg(long, env = "VDI_SHUTDOWN_GRACE_SEC", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub shutdown_grace_sec: u64,

    /// Alerts by webhook.
    #[command(flatten)]
    pub webhooks: WebhookArgs,

    /// TLS: the listeners' certificate, the CA that verifies workers,
    /// mutual TLS (the same flags as `worker`'s).
    #[command(flatten)]
    pub tls: TlsArgs,
}
