//! The load generator's flags: those every scenario shares ([`Common`])
//! and each scenario's own, turned into the library's configurations.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vdi_cluster_benches::cluster::Tuning;
use vdi_cluster_benches::cover::CoverConfig;
use vdi_cluster_benches::deploy::Backend;
use vdi_cluster_benches::heartbeat::HeartbeatConfig;
use vdi_cluster_benches::http::{HttpSetup, StartLatency, default_server_bin, port_of};
use vdi_cluster_benches::seat::SeatConfig;
use vdi_cluster_benches::steady::SteadyConfig;
use vdi_cluster_benches::storm::{StartModel, StormConfig};
use vdi_cluster_benches::surge::SurgeConfig;

#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// Backend: memory, redis://HOST:PORT (a random key prefix, deleted
    /// afterwards), postgres://USER@HOST:PORT/DB (a fresh database beside
    /// DB, dropped afterwards), or http://127.0.0.1:PORT (starts
    /// `vdi-cluster serve` on PORT, PORT+1, … over --server-store).
    /// 127.0.0.1 / localhost only.
    #[arg(long, default_value = "memory")]
    pub(crate) store: Backend,
    /// Control-plane replicas, each a ClusterService over its own store
    /// handle (connection or pool).
    #[arg(long, default_value_t = 4)]
    pub(crate) replicas: usize,
    /// Measured runs; the report gives each and their median.
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// PostgreSQL pool size of each replica.
    #[arg(long, default_value_t = 8)]
    pub(crate) pg_pool: u32,
    /// How long a replica reuses its worker snapshot for ranking, ms.
    #[arg(long, default_value_t = 500)]
    snapshot_ms: u64,
    /// Base seed of the replicas' tie-breaking.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pace the replicas' starts (every start takes one of its worker's
    /// start permits). Off by default, so the figures are of placements
    /// alone; an http:// store's servers get the same `--pace-starts`.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pace_starts: bool,
    /// Also print the results as one JSON object per run.
    #[arg(long)]
    pub(crate) json: bool,
    /// With an http:// store: the backend the started `vdi-cluster serve`
    /// processes use (memory, redis://…, postgres://…; a fresh namespace).
    #[arg(long, default_value = "memory")]
    server_store: Backend,
    /// With an http:// store: the `vdi-cluster` binary to start (default:
    /// beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

impl Common {
    /// The backend behind the servers of an `http://` store.
    pub(crate) fn server_store(&self) -> &Backend {
        &self.server_store
    }

    /// The HTTP setup, when the store is `http://…`.
    pub(crate) fn http(&self) -> anyhow::Result<Option<HttpSetup>> {
        let Backend::Http(url) = &self.store else {
            return Ok(None);
        };
        Ok(Some(HttpSetup {
            server_bin: self.server_bin.clone().unwrap_or_else(default_server_bin),
            server_store: self.server_store.clone(),
            replicas: self.replicas,
            pg_pool: self.pg_pool,
            port: port_of(url)?,
            start_latency: StartLatency::default(),
            pace_starts: self.pace_starts,
        }))
    }

    /// The same flags with the replicas in this process on the servers'
    /// backend (`--server-store`) instead of over HTTP.
    pub(crate) fn in_process(&self) -> Self {
        Self {
            store: self.server_store.clone(),
            ..self.clone()
        }
    }

    /// How the store is named in reports.
    pub(crate) fn label(&self) -> String {
        match &self.store {
            Backend::Http(_) => format!("http → {}", self.server_store.name()),
            other => other.name().to_owned(),
        }
    }

    pub(crate) fn tuning(&self) -> Tuning {
        Tuning {
            snapshot_max_age: Duration::from_millis(self.snapshot_ms),
            seed: self.seed,
            pace_starts: self.pace_starts,
        }
    }
}

/// The simulated fleet, the same flags in every scenario.
#[derive(Debug, Args)]
struct Fleet {
    /// Worker nodes.
    #[arg(long, default_value_t = 500)]
    workers: usize,
    /// Slots per worker.
    #[arg(long, default_value_t = 20)]
    slots: u32,
}

#[derive(Debug, Args)]
pub(crate) struct SurgeArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    fleet: Fleet,
    /// Students allocating at once.
    #[arg(long, default_value_t = 10_000)]
    students: usize,
    /// Exams the students belong to (round robin).
    #[arg(long, default_value_t = 10)]
    exams: usize,
    /// Allocations in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Untimed allocations (then releases) before each run.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
    /// Stop starting allocations after this many seconds.
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Skip the raw-ceiling and naive baselines.
    #[arg(long)]
    pub(crate) no_baselines: bool,
    /// Count every store call of the measured phase and print calls per
    /// allocation and their mean latency.
    #[arg(long)]
    breakdown: bool,
    /// Also measure, in every run, the same surge with its exams booked
    /// (admission checked, waiting rooms on), and its ratio to the
    /// unbooked one.
    #[arg(long)]
    pub(crate) booked: bool,
    /// With an http:// store: also measure, in every run, the same surge
    /// with the replicas in this process on --server-store, and the
    /// ratio of HTTP to it.
    #[arg(long)]
    pub(crate) vs_in_process: bool,
}

impl SurgeArgs {
    pub(crate) fn config(&self) -> SurgeConfig {
        SurgeConfig {
            workers: self.fleet.workers,
            slots: self.fleet.slots,
            students: self.students,
            exams: self.exams,
            concurrency: self.concurrency,
            warmup: self.warmup,
            time_limit: Duration::from_secs(self.time_limit),
            tuning: self.common.tuning(),
            pg_pool: self.common.pg_pool,
            breakdown: self.breakdown,
            booked: false, // each run sets it for its second surge
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct HeartbeatArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    fleet: Fleet,
    /// Heartbeats in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Heartbeats per run.
    #[arg(long, default_value_t = 50_000)]
    heartbeats: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
}

impl HeartbeatArgs {
    pub(crate) fn config(&self) -> HeartbeatConfig {
        HeartbeatConfig {
            workers: self.fleet.workers,
            slots: self.fleet.slots,
            concurrency: self.concurrency,
            heartbeats: self.heartbeats,
            time_limit: Duration::from_secs(self.time_limit),
            tuning: self.common.tuning(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SteadyArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    fleet: Fleet,
    /// Share of the slots taken before measuring, percent.
    #[arg(long, default_value_t = 50)]
    occupancy: u32,
    /// Exams the students belong to.
    #[arg(long, default_value_t = 10)]
    exams: usize,
    /// Operations per second (40 % allocate, 40 % release, 20 % heartbeat).
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// Most operations in flight.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds of each phase (without, then with reconcile).
    #[arg(long, default_value_t = 15)]
    phase_secs: u64,
    /// Pause between reconcile passes in the second phase, ms.
    #[arg(long, default_value_t = 100)]
    reconcile_pause_ms: u64,
    /// Count every store call per phase and print calls per operation.
    #[arg(long)]
    breakdown: bool,
}

impl SteadyArgs {
    pub(crate) fn config(&self) -> SteadyConfig {
        SteadyConfig {
            workers: self.fleet.workers,
            slots: self.fleet.slots,
            occupancy_percent: self.occupancy.min(100),
            exams: self.exams,
            rate: self.rate.max(1),
            concurrency: self.concurrency,
            phase: Duration::from_secs(self.phase_secs),
            reconcile_pause: Duration::from_millis(self.reconcile_pause_ms),
            tuning: self.common.tuning(),
            breakdown: self.breakdown,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SeatArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    fleet: Fleet,
    /// Students, one click each.
    #[arg(long, default_value_t = 10_000)]
    students: usize,
    /// The clicks are spread over this many seconds.
    #[arg(long, default_value_t = 10)]
    window_secs: u64,
    /// The fastest worker node's session start, ms.
    #[arg(long, default_value_t = 300)]
    start_min_ms: u64,
    /// The slowest worker node's session start, ms.
    #[arg(long, default_value_t = 2_000)]
    start_max_ms: u64,
    /// A refused student clicks again after this many ms.
    #[arg(long, default_value_t = 1_000)]
    retry_pause_ms: u64,
    /// Students not seated after this many seconds are counted as not seated.
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Boot storm, in process: nodes whose start takes
    /// `base × (1 + k × starts in flight)` and fails past the start
    /// timeout; the exam start runs without and then with paced starts
    /// (the fleet and students from --workers, --slots, --students,
    /// --window-secs; no store needed).
    #[arg(long)]
    pub(crate) storm: bool,
    /// The storm's `base`: a start alone on its node, ms.
    #[arg(long, default_value_t = 1_000)]
    storm_base_ms: u64,
    /// The storm's `k`: how much each start in flight slows a new one.
    #[arg(long, default_value_t = 0.5)]
    storm_k: f64,
    /// The storm nodes' start timeout, ms.
    #[arg(long, default_value_t = 10_000)]
    start_timeout_ms: u64,
}

impl SeatArgs {
    /// The boot storm's exam start.
    pub(crate) fn storm_config(&self) -> StormConfig {
        StormConfig {
            workers: self.fleet.workers,
            slots: self.fleet.slots,
            students: self.students,
            window: Duration::from_secs(self.window_secs),
            model: StartModel {
                base: Duration::from_millis(self.storm_base_ms),
                k: self.storm_k.max(0.0),
                timeout: Duration::from_millis(self.start_timeout_ms),
            },
            retry_pause: Duration::from_millis(self.retry_pause_ms),
            time_limit: Duration::from_secs(self.time_limit),
        }
    }

    pub(crate) fn config(&self) -> SeatConfig {
        SeatConfig {
            workers: self.fleet.workers,
            slots: self.fleet.slots,
            students: self.students,
            window: Duration::from_secs(self.window_secs),
            retry_pause: Duration::from_millis(self.retry_pause_ms),
            time_limit: Duration::from_secs(self.time_limit),
        }
    }

    /// The worker nodes' start times.
    pub(crate) fn start_latency(&self) -> StartLatency {
        StartLatency {
            min: Duration::from_millis(self.start_min_ms),
            max: Duration::from_millis(self.start_max_ms.max(self.start_min_ms)),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CoverArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Dispatch records to cover.
    #[arg(long, default_value_t = 100_000)]
    dispatches: usize,
    /// Workers they are spread over.
    #[arg(long, default_value_t = 500)]
    workers: usize,
    /// Exams they belong to.
    #[arg(long, default_value_t = 20)]
    exams: usize,
    /// Adoptions in flight while filling.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Dispatches per scan page (`WORKER_DISPATCH_SCAN_COUNT`).
    #[arg(long, default_value_t = 200)]
    scan_count: usize,
    /// Scan pages per step of the leader's pass.
    #[arg(long, default_value_t = 50)]
    pages_per_step: usize,
}

impl CoverArgs {
    pub(crate) fn config(&self) -> CoverConfig {
        CoverConfig {
            dispatches: self.dispatches,
            workers: self.workers.max(1),
            exams: self.exams.max(1),
            concurrency: self.concurrency.max(1),
            scan_count: self.scan_count.max(1),
            pages_per_step: self.pages_per_step.max(1),
        }
    }
}
