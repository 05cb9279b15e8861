//! `vdi-loadgen`: the exam-start load generator of vdi-cluster.
//!
//! ```text
//! vdi-loadgen surge     --store redis://127.0.0.1:6379
//! vdi-loadgen heartbeat --store postgres://postgres@127.0.0.1:5432/postgres
//! vdi-loadgen steady    --store memory
//! ```
//!
//! Every scenario runs `--runs` times (default 3) on a fresh namespace
//! (random Redis prefix, fresh PostgreSQL database, removed afterwards) and
//! prints one table row per run and the median. `surge` measures the
//! baselines (raw ceiling, naive) in the same run. See BENCHMARKS.md.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use vdi_cluster_benches::baseline::{BaselineReport, naive, raw_ceiling};
use vdi_cluster_benches::cluster::Tuning;
use vdi_cluster_benches::cpu::CpuUse;
use vdi_cluster_benches::deploy::{Backend, Deployment};
use vdi_cluster_benches::heartbeat::{HeartbeatConfig, HeartbeatReport, heartbeats};
use vdi_cluster_benches::http::{
    HttpCluster, HttpSetup, default_server_bin, http_heartbeats, http_surge, port_of,
};
use vdi_cluster_benches::instrument::MethodStats;
use vdi_cluster_benches::latency::{Summary, median, ms};
use vdi_cluster_benches::steady::{SteadyConfig, SteadyReport, steady};
use vdi_cluster_benches::surge::{SurgeConfig, SurgeReport, surge};
use vdi_cluster_benches::table::{Table, thousands};

#[derive(Debug, Parser)]
#[command(
    name = "vdi-loadgen",
    version,
    about = "Exam-start load generator of vdi-cluster"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Exam start: every student allocates at once. Also measures the
    /// backend's raw ceiling and the naive approach in the same run.
    Surge(SurgeArgs),
    /// Every worker heartbeats as fast as it can.
    Heartbeat(HeartbeatArgs),
    /// An exam in progress: allocations, releases and heartbeats at a fixed
    /// rate, first without, then with reconcile passes running.
    Steady(SteadyArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// Backend: memory, redis://HOST:PORT (a random key prefix, deleted
    /// afterwards), postgres://USER@HOST:PORT/DB (a fresh database beside
    /// DB, dropped afterwards), or http://127.0.0.1:PORT (starts
    /// `vdi-cluster serve` on PORT, PORT+1, … over --server-store).
    /// 127.0.0.1 / localhost only.
    #[arg(long, default_value = "memory")]
    store: Backend,
    /// Control-plane replicas, each a ClusterService over its own store
    /// handle (connection or pool).
    #[arg(long, default_value_t = 4)]
    replicas: usize,
    /// Measured runs; the report gives each and their median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// PostgreSQL pool size of each replica.
    #[arg(long, default_value_t = 8)]
    pg_pool: u32,
    /// How long a replica reuses its worker snapshot for ranking, ms.
    #[arg(long, default_value_t = 500)]
    snapshot_ms: u64,
    /// Base seed of the replicas' tie-breaking.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also print the results as one JSON object per run.
    #[arg(long)]
    json: bool,
    /// With an http:// store: the backend the started `vdi-cluster serve`
    /// processes use (memory, redis://…, postgres://…; a fresh namespace).
    #[arg(long, default_value = "memory")]
    server_store: Backend,
    /// With an http:// store: the `vdi-cluster` binary to start (default:
    /// beside this one).
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
}

impl Common {
    /// The HTTP setup, when the store is `http://…`.
    fn http(&self) -> anyhow::Result<Option<HttpSetup>> {
        let Backend::Http(url) = &self.store else {
            return Ok(None);
        };
        Ok(Some(HttpSetup {
            server_bin: self.server_bin.clone().unwrap_or_else(default_server_bin),
            server_store: self.server_store.clone(),
            replicas: self.replicas,
            pg_pool: self.pg_pool,
            port: port_of(url)?,
        }))
    }

    /// How the store is named in reports.
    fn label(&self) -> String {
        match &self.store {
            Backend::Http(_) => format!("http → {}", self.server_store.name()),
            other => other.name().to_owned(),
        }
    }

    fn tuning(&self) -> Tuning {
        Tuning {
            snapshot_max_age: Duration::from_millis(self.snapshot_ms),
            seed: self.seed,
        }
    }
}

#[derive(Debug, Args)]
struct SurgeArgs {
    #[command(flatten)]
    common: Common,
    /// Worker nodes.
    #[arg(long, default_value_t = 500)]
    workers: usize,
    /// Slots per worker.
    #[arg(long, default_value_t = 20)]
    slots: u32,
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
    no_baselines: bool,
    /// Count every store call of the measured phase and print calls per
    /// allocation and their mean latency.
    #[arg(long)]
    breakdown: bool,
}

#[derive(Debug, Args)]
struct HeartbeatArgs {
    #[command(flatten)]
    common: Common,
    /// Worker nodes.
    #[arg(long, default_value_t = 500)]
    workers: usize,
    /// Slots per worker.
    #[arg(long, default_value_t = 20)]
    slots: u32,
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

#[derive(Debug, Args)]
struct SteadyArgs {
    #[command(flatten)]
    common: Common,
    /// Worker nodes.
    #[arg(long, default_value_t = 500)]
    workers: usize,
    /// Slots per worker.
    #[arg(long, default_value_t = 20)]
    slots: u32,
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

fn bar(label: String) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:40}] {pos}/{len} {per_sec} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label);
    bar
}

/// Runs a scenario against freshly started servers (`http://`), and stops
/// them afterwards, also on Ctrl-C.
macro_rules! fresh_http {
    ($setup:expr, |$c:ident| $body:expr) => {{
        let cluster = std::sync::Arc::new(HttpCluster::start($setup).await?);
        let result = {
            let $c = &cluster;
            tokio::select! {
                r = $body => r,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        };
        // Aborted tasks of an interrupted phase let go of it shortly.
        let mut cluster = cluster;
        for _ in 0..100 {
            match std::sync::Arc::try_unwrap(cluster) {
                Ok(c) => {
                    c.stop().await;
                    break;
                }
                Err(c) => {
                    cluster = c;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        result
    }};
}

/// Runs a scenario that borrows a fresh deployment, and removes the
/// deployment afterwards, also on Ctrl-C.
macro_rules! fresh {
    ($common:expr, |$d:ident| $body:expr) => {{
        let common = $common;
        let deployment = Deployment::open(&common.store, common.replicas, common.pg_pool)
            .await
            .with_context(|| format!("open {}", common.store))?;
        let result = {
            let $d = &deployment;
            tokio::select! {
                r = $body => r,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        };
        deployment.close().await;
        result
    }};
}

fn print_breakdown(title: &str, calls: &BTreeMap<&'static str, MethodStats>, ops: u64) {
    let ops = ops.max(1) as f64;
    let mut b = Table::new([title, "calls", "per operation", "mean"]);
    for (method, stats) in calls {
        b.row([
            (*method).to_owned(),
            stats.calls.to_string(),
            format!("{:.3}", stats.calls as f64 / ops),
            ms(stats.total / u32::try_from(stats.calls.max(1)).unwrap_or(u32::MAX)),
        ]);
    }
    println!("{}", b.render());
}

fn latency_cells(s: &Summary) -> [String; 5] {
    [
        thousands(s.rate()),
        ms(s.p50),
        ms(s.p95),
        ms(s.p99),
        ms(s.max),
    ]
}

/// CPU per operation: load generator (with the in-process control
/// plane), backend server, and — over HTTP — the control-plane processes
/// added to the first figure after a `+`.
fn cpu_cells(cpu: &CpuUse, ops: u64) -> [String; 3] {
    let [client, server, control] = cpu.per_op(ops);
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let client = match control {
        Some(c) => format!("{} + {c:.0}", us(client)),
        None => us(client),
    };
    [
        client,
        us(server),
        cpu.machine_busy
            .map_or("-".to_owned(), |b| format!("{:.0} %", b * 100.0)),
    ]
}

fn cpu_json(cpu: &CpuUse, ops: u64) -> serde_json::Value {
    let [client, server, control] = cpu.per_op(ops);
    json!({
        "clientUsPerOp": client, "serverUsPerOp": server, "controlPlaneUsPerOp": control,
        "machineBusy": cpu.machine_busy,
    })
}

fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "count": s.count,
        "seconds": s.elapsed.as_secs_f64(),
        "perSecond": s.rate(),
        "p50Ms": s.p50.as_secs_f64() * 1e3,
        "p95Ms": s.p95.as_secs_f64() * 1e3,
        "p99Ms": s.p99.as_secs_f64() * 1e3,
        "maxMs": s.max.as_secs_f64() * 1e3,
    })
}

fn baseline_json(b: &Option<BaselineReport>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => json!({
            "latency": summary_json(&b.latency),
            "reserved": b.tally.reserved,
            "refused": b.tally.refused,
            "errors": b.tally.errors,
            "overAllocations": b.audit.over_allocations,
            "overAllocatedWorkers": b.audit.over_allocated_workers,
            "cpu": cpu_json(&b.cpu, b.latency.count),
        }),
    }
}

struct SurgeRun {
    ours: SurgeReport,
    raw: Option<BaselineReport>,
    naive: Option<BaselineReport>,
}

async fn run_surge(args: SurgeArgs) -> anyhow::Result<bool> {
    let common = &args.common;
    let config = SurgeConfig {
        workers: args.workers,
        slots: args.slots,
        students: args.students,
        exams: args.exams,
        concurrency: args.concurrency,
        warmup: args.warmup,
        time_limit: Duration::from_secs(args.time_limit),
        tuning: common.tuning(),
        pg_pool: common.pg_pool,
        breakdown: args.breakdown,
    };
    let http = common.http()?;
    let baselines = !args.no_baselines && http.is_none();
    let has_naive = matches!(common.store, Backend::Redis(_) | Backend::Postgres(_));
    let mut runs = Vec::new();
    for run in 1..=common.runs.max(1) {
        let progress = bar(format!("run {run} ours"));
        let ours = match &http {
            Some(setup) => fresh_http!(setup, |c| http_surge(c, &config, &progress))?,
            None => fresh!(common, |d| surge(d, &config, &progress))?,
        };
        progress.finish_and_clear();
        let mut raw = None;
        let mut naive_report = None;
        if baselines {
            let progress = bar(format!("run {run} raw ceiling"));
            raw = Some(fresh!(common, |d| raw_ceiling(d, &config, &progress))?);
            progress.finish_and_clear();
            if has_naive {
                let progress = bar(format!("run {run} naive"));
                naive_report = Some(fresh!(common, |d| naive(d, &config, &progress))?);
                progress.finish_and_clear();
            }
        }
        eprintln!(
            "run {run}: ours {} alloc/s, p99 {}, over-allocations {}",
            thousands(ours.latency.rate()),
            ms(ours.latency.p99),
            ours.audit.over_allocations
        );
        if common.json {
            println!(
                "{}",
                json!({
                    "scenario": "surge", "store": common.label(), "run": run,
                    "replicas": common.replicas, "workers": config.workers, "slots": config.slots,
                    "students": config.students, "exams": config.exams,
                    "concurrency": config.concurrency,
                    "ours": {
                        "latency": summary_json(&ours.latency),
                        "placed": ours.tally.placed, "noCapacity": ours.tally.no_capacity,
                        "errors": ours.tally.errors, "firstError": ours.tally.first_error,
                        "contentionRetries": ours.tally.contention_retries,
                        "contended": ours.tally.contended,
                        "notStarted": ours.not_started,
                        "overAllocations": ours.audit.over_allocations,
                        "workerSideOver": ours.worker_side_over,
                        "counterDrift": ours.audit.counter_drift,
                        "cpu": cpu_json(&ours.cpu, ours.latency.count),
                    },
                    "raw": baseline_json(&raw),
                    "naive": baseline_json(&naive_report),
                })
            );
        }
        runs.push(SurgeRun {
            ours,
            raw,
            naive: naive_report,
        });
    }

    println!(
        "\nsurge on {} — {} replicas, {} workers × {} slots, {} students in {} exams, concurrency {}\n",
        common.label(),
        common.replicas,
        config.workers,
        config.slots,
        config.students,
        config.exams,
        config.concurrency
    );
    let mut t = Table::new([
        "run",
        "system",
        "alloc/s",
        "p50",
        "p95",
        "p99",
        "max",
        "placed",
        "no capacity",
        "errors",
        "retries",
        "over-alloc",
        "ours ÷ it",
        "client µs/op",
        "server µs/op",
        "machine busy",
    ]);
    for (i, r) in runs.iter().enumerate() {
        let o = &r.ours;
        let [rate, p50, p95, p99, max] = latency_cells(&o.latency);
        t.row([
            (i + 1).to_string(),
            "ours".into(),
            rate,
            p50,
            p95,
            p99,
            max,
            o.tally.placed.to_string(),
            o.tally.no_capacity.to_string(),
            o.tally.errors.to_string(),
            if http.is_some() {
                "-".to_owned()
            } else {
                o.tally.contention_retries.to_string()
            },
            (o.audit.over_allocations + o.worker_side_over).to_string(),
            String::new(),
            cpu_cells(&o.cpu, o.latency.count)[0].clone(),
            cpu_cells(&o.cpu, o.latency.count)[1].clone(),
            cpu_cells(&o.cpu, o.latency.count)[2].clone(),
        ]);
        for (name, b) in [("raw ceiling", &r.raw), ("naive", &r.naive)] {
            if let Some(b) = b {
                let [rate, p50, p95, p99, max] = latency_cells(&b.latency);
                t.row([
                    (i + 1).to_string(),
                    name.into(),
                    rate,
                    p50,
                    p95,
                    p99,
                    max,
                    b.tally.reserved.to_string(),
                    b.tally.refused.to_string(),
                    b.tally.errors.to_string(),
                    "-".into(),
                    b.audit.over_allocations.to_string(),
                    format!("{:.2}", o.latency.rate() / b.latency.rate().max(1e-9)),
                    cpu_cells(&b.cpu, b.latency.count)[0].clone(),
                    cpu_cells(&b.cpu, b.latency.count)[1].clone(),
                    cpu_cells(&b.cpu, b.latency.count)[2].clone(),
                ]);
            }
        }
    }
    println!("{}", t.render());

    let med = |f: &dyn Fn(&SurgeRun) -> Option<f64>| {
        median(&runs.iter().filter_map(f).collect::<Vec<_>>())
    };
    let mut m = Table::new(["median of runs", "value"]);
    let rate = med(&|r| Some(r.ours.latency.rate())).unwrap_or(0.0);
    m.row(["ours alloc/s".into(), thousands(rate)]);
    m.row([
        "ours p99".into(),
        format!(
            "{:.2} ms",
            med(&|r| Some(r.ours.latency.p99.as_secs_f64() * 1e3)).unwrap_or(0.0)
        ),
    ]);
    if let Some(raw) = med(&|r| r.raw.as_ref().map(|b| b.latency.rate())) {
        m.row(["raw ceiling ops/s".into(), thousands(raw)]);
        m.row([
            "ours ÷ raw ceiling".into(),
            format!(
                "{:.2}",
                med(&|r| r
                    .raw
                    .as_ref()
                    .map(|b| r.ours.latency.rate() / b.latency.rate()))
                .unwrap_or(0.0)
            ),
        ]);
    }
    if let Some(naive) = med(&|r| r.naive.as_ref().map(|b| b.latency.rate())) {
        m.row(["naive alloc/s".into(), thousands(naive)]);
        m.row([
            "ours ÷ naive".into(),
            format!(
                "{:.2}",
                med(&|r| r
                    .naive
                    .as_ref()
                    .map(|b| r.ours.latency.rate() / b.latency.rate()))
                .unwrap_or(0.0)
            ),
        ]);
        m.row([
            "naive over-allocations".into(),
            thousands(
                med(&|r| r.naive.as_ref().map(|b| b.audit.over_allocations as f64)).unwrap_or(0.0),
            ),
        ]);
    }
    let over: u64 = runs
        .iter()
        .map(|r| r.ours.audit.over_allocations + r.ours.worker_side_over)
        .sum();
    m.row(["ours over-allocations (all runs)".into(), over.to_string()]);
    println!("{}", m.render());
    if let Some(last) = runs.last()
        && let Some(calls) = &last.ours.breakdown
    {
        print_breakdown("store call (last run)", calls, last.ours.latency.count);
    }
    let correct = runs.iter().all(|r| r.ours.is_correct());
    if !correct {
        eprintln!("FAILED: a run over-allocated, drifted or failed an allocation");
    }
    Ok(correct)
}

async fn run_heartbeat(args: HeartbeatArgs) -> anyhow::Result<bool> {
    let common = &args.common;
    let config = HeartbeatConfig {
        workers: args.workers,
        slots: args.slots,
        concurrency: args.concurrency,
        heartbeats: args.heartbeats,
        time_limit: Duration::from_secs(args.time_limit),
        tuning: common.tuning(),
    };
    let http = common.http()?;
    let mut runs: Vec<HeartbeatReport> = Vec::new();
    for run in 1..=common.runs.max(1) {
        let progress = bar(format!("run {run} heartbeats"));
        let report = match &http {
            Some(setup) => fresh_http!(setup, |c| http_heartbeats(c, &config, &progress))?,
            None => fresh!(common, |d| heartbeats(d, &config, &progress))?,
        };
        progress.finish_and_clear();
        if common.json {
            println!(
                "{}",
                json!({
                    "scenario": "heartbeat", "store": common.label(), "run": run,
                    "replicas": common.replicas, "workers": config.workers,
                    "concurrency": config.concurrency,
                    "latency": summary_json(&report.latency), "accepted": report.accepted,
                    "stale": report.stale, "errors": report.errors,
                    "cpu": cpu_json(&report.cpu, report.latency.count),
                    "firstError": report.first_error,
                })
            );
        }
        runs.push(report);
    }
    println!(
        "\nheartbeat on {} — {} replicas, {} workers, concurrency {}\n",
        common.label(),
        common.replicas,
        config.workers,
        config.concurrency
    );
    let mut t = Table::new([
        "run",
        "heartbeats/s",
        "p50",
        "p95",
        "p99",
        "max",
        "applied",
        "stale",
        "errors",
        "client µs/op",
        "server µs/op",
        "machine busy",
    ]);
    for (i, r) in runs.iter().enumerate() {
        let [rate, p50, p95, p99, max] = latency_cells(&r.latency);
        t.row([
            (i + 1).to_string(),
            rate,
            p50,
            p95,
            p99,
            max,
            r.accepted.to_string(),
            r.stale.to_string(),
            r.errors.to_string(),
            cpu_cells(&r.cpu, r.latency.count)[0].clone(),
            cpu_cells(&r.cpu, r.latency.count)[1].clone(),
            cpu_cells(&r.cpu, r.latency.count)[2].clone(),
        ]);
    }
    let rates: Vec<f64> = runs.iter().map(|r| r.latency.rate()).collect();
    let p99s: Vec<f64> = runs
        .iter()
        .map(|r| r.latency.p99.as_secs_f64() * 1e3)
        .collect();
    t.row([
        "median".into(),
        thousands(median(&rates).unwrap_or(0.0)),
        String::new(),
        String::new(),
        format!("{:.2} ms", median(&p99s).unwrap_or(0.0)),
    ]);
    println!("{}", t.render());
    if let Some(e) = runs.iter().find_map(|r| r.first_error.as_ref()) {
        eprintln!("first error: {e}");
    }
    Ok(runs.iter().all(|r| r.errors == 0))
}

async fn run_steady(args: SteadyArgs) -> anyhow::Result<bool> {
    let common = &args.common;
    let config = SteadyConfig {
        workers: args.workers,
        slots: args.slots,
        occupancy_percent: args.occupancy.min(100),
        exams: args.exams,
        rate: args.rate.max(1),
        concurrency: args.concurrency,
        phase: Duration::from_secs(args.phase_secs),
        reconcile_pause: Duration::from_millis(args.reconcile_pause_ms),
        tuning: common.tuning(),
        breakdown: args.breakdown,
    };
    if matches!(common.store, Backend::Http(_)) {
        anyhow::bail!("steady runs in process (memory, redis://…, postgres://…), not over http://");
    }
    let mut runs: Vec<SteadyReport> = Vec::new();
    for run in 1..=common.runs.max(1) {
        let progress = bar(format!("run {run} steady (s)"));
        let report = fresh!(common, |d| steady(d, &config, &progress))?;
        progress.finish_and_clear();
        if common.json {
            let phases: Vec<_> = report
                .phases
                .iter()
                .map(|p| {
                    json!({
                        "phase": p.name, "all": summary_json(&p.all),
                        "allocate": summary_json(&p.allocate),
                        "release": summary_json(&p.release),
                        "heartbeat": summary_json(&p.heartbeat),
                        "reconcile": p.reconcile.as_ref().map(summary_json),
                        "noCapacity": p.no_capacity, "errors": p.errors,
                        "cpu": cpu_json(&p.cpu, p.all.count),
                        "firstError": p.first_error,
                    })
                })
                .collect();
            println!(
                "{}",
                json!({
                    "scenario": "steady", "store": common.label(), "run": run,
                    "replicas": common.replicas, "workers": config.workers,
                    "rate": config.rate, "phases": phases,
                    "overAllocations": report.audit.over_allocations,
                    "counterDrift": report.audit.counter_drift,
                })
            );
        }
        runs.push(report);
    }
    println!(
        "\nsteady on {} — {} replicas, {} workers × {} slots at {} % occupancy, {} ops/s, {} s per phase\n",
        common.label(),
        common.replicas,
        config.workers,
        config.slots,
        config.occupancy_percent,
        config.rate,
        config.phase.as_secs()
    );
    let mut t = Table::new([
        "run",
        "phase",
        "ops/s",
        "p50",
        "p95",
        "p99",
        "max",
        "alloc p99",
        "release p99",
        "heartbeat p99",
        "reconcile passes",
        "pass p50",
        "errors",
        "client µs/op",
        "server µs/op",
        "machine busy",
    ]);
    for (i, r) in runs.iter().enumerate() {
        for p in &r.phases {
            let [rate, p50, p95, p99, max] = latency_cells(&p.all);
            t.row([
                (i + 1).to_string(),
                p.name.into(),
                rate,
                p50,
                p95,
                p99,
                max,
                ms(p.allocate.p99),
                ms(p.release.p99),
                ms(p.heartbeat.p99),
                p.reconcile.map_or("-".into(), |s| s.count.to_string()),
                p.reconcile.map_or("-".into(), |s| ms(s.p50)),
                p.errors.to_string(),
                cpu_cells(&p.cpu, p.all.count)[0].clone(),
                cpu_cells(&p.cpu, p.all.count)[1].clone(),
                cpu_cells(&p.cpu, p.all.count)[2].clone(),
            ]);
        }
    }
    println!("{}", t.render());
    let ratio = |q: fn(&Summary) -> Duration| {
        median(
            &runs
                .iter()
                .filter(|r| r.phases.len() == 2)
                .map(|r| {
                    q(&r.phases[1].all).as_secs_f64() / q(&r.phases[0].all).as_secs_f64().max(1e-9)
                })
                .collect::<Vec<_>>(),
        )
        .unwrap_or(0.0)
    };
    let mut m = Table::new(["median of runs", "value"]);
    m.row([
        "p50 with ÷ without reconcile".into(),
        format!("{:.2}", ratio(|s| s.p50)),
    ]);
    m.row([
        "p99 with ÷ without reconcile".into(),
        format!("{:.2}", ratio(|s| s.p99)),
    ]);
    let over: u64 = runs.iter().map(|r| r.audit.over_allocations).sum();
    m.row(["over-allocations (all runs)".into(), over.to_string()]);
    println!("{}", m.render());
    if let Some(last) = runs.last() {
        for p in &last.phases {
            if let Some(calls) = &p.breakdown {
                print_breakdown(
                    &format!("store call ({}, last run)", p.name),
                    calls,
                    p.all.count,
                );
            }
        }
    }
    if let Some(e) = runs
        .iter()
        .flat_map(|r| &r.phases)
        .find_map(|p| p.first_error.as_ref())
    {
        eprintln!("first error: {e}");
    }
    Ok(runs.iter().all(|r| {
        r.audit.over_allocations == 0
            && r.audit.counter_drift == 0
            && r.phases.iter().all(|p| p.errors == 0)
    }))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.scenario {
        Scenario::Surge(args) => run_surge(args).await,
        Scenario::Heartbeat(args) => run_heartbeat(args).await,
        Scenario::Steady(args) => run_steady(args).await,
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
