//! `failover`: the store's primary killed during an exam-start surge (see
//! `vdi_cluster_benches::failover`). `--runs` runs, each on a deployment
//! of its own; a report per run, then the runs side by side with the
//! medians. The exit status is non-zero when a run's figures do not hold.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vdi_cluster_benches::failover::{Engine, FailoverConfig, FailoverReport, failover};
use vdi_cluster_benches::http::default_server_bin;
use vdi_cluster_benches::table::Table;

#[derive(Debug, Args)]
pub(crate) struct FailoverArgs {
    /// The engine whose primary dies: a Redis primary with a replica and
    /// three sentinels, or a PostgreSQL primary with a streaming standby,
    /// each started for the run on loopback and removed afterwards.
    #[arg(long)]
    store: Engine,
    /// Synchronous replication: `serve --redis-wait-replicas 1`, or a
    /// synchronous standby (`synchronous_standby_names = '*'`).
    #[arg(long)]
    sync: bool,
    /// Redis: start the old primary again, as the new one's replica, as
    /// soon as the sentinels have failed over (always with --sync).
    #[arg(long)]
    old_primary_back: bool,
    /// The short run of CI (2 replicas, 3 agents × 40 slots, 90 students
    /// within 3 s); the flags below still apply.
    #[arg(long)]
    short: bool,
    /// Runs, each on a fresh deployment.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// `serve` replicas [default: 3].
    #[arg(long)]
    replicas: Option<usize>,
    /// Worker agents (processes) [default: 4].
    #[arg(long)]
    agents: Option<usize>,
    /// Slots of each agent [default: 600].
    #[arg(long)]
    slots: Option<u32>,
    /// Students [default: 2,000].
    #[arg(long)]
    students: Option<usize>,
    /// Their first clicks are spread over this many seconds [default: 10].
    #[arg(long)]
    window_secs: Option<f64>,
    /// PostgreSQL: promote the standby this long after the kill.
    #[arg(long, default_value_t = 0)]
    promote_after_ms: u64,
    /// The `vdi-cluster` binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Also print each run's report as one JSON object.
    #[arg(long)]
    json: bool,
}

impl FailoverArgs {
    fn config(&self) -> FailoverConfig {
        let bin = self.server_bin.clone().unwrap_or_else(default_server_bin);
        let mut c = if self.short {
            FailoverConfig::short(bin, self.store, self.sync)
        } else {
            FailoverConfig::full(bin, self.store, self.sync)
        };
        if let Some(v) = self.replicas {
            c.replicas = v;
        }
        if let Some(v) = self.agents {
            c.agents = v;
        }
        if let Some(v) = self.slots {
            c.slots = v;
        }
        if let Some(v) = self.students {
            c.students = v;
        }
        if let Some(v) = self.window_secs {
            c.window = Duration::from_secs_f64(v.max(0.0));
        }
        c.promote_after = Duration::from_millis(self.promote_after_ms);
        c.old_primary_back |= self.old_primary_back;
        c
    }
}

/// Runs the failovers and prints their reports; `Ok(false)` when a run's
/// figures did not hold.
pub(crate) async fn run(args: FailoverArgs) -> anyhow::Result<bool> {
    let config = args.config();
    let mut reports = Vec::new();
    for run in 1..=args.runs.max(1) {
        eprintln!(
            "run {run}/{}: {} students within {:.0} s on {}{}, {} replicas, {} agents × {} slots",
            args.runs.max(1),
            config.students,
            config.window.as_secs_f64(),
            config.engine.name(),
            if config.sync { " --sync" } else { "" },
            config.replicas,
            config.agents,
            config.slots
        );
        let report = failover(&config).await?;
        if args.json {
            println!("{}", report.json());
        }
        println!("\n{} (run {run})\n", report.title());
        println!("store: {}; {}\n", report.store_detail, report.failover_note);
        println!("{}", report.table().render());
        if !report.passed() {
            eprintln!("FAILED: {}", report.failures().join("; "));
            if let Some(logs) = &report.logs {
                eprintln!("the processes' logs are kept in {}", logs.display());
            }
        }
        reports.push(report);
    }
    println!("{}", runs_table(&reports).render());
    Ok(reports.iter().all(FailoverReport::passed))
}

/// The runs side by side, and the medians.
fn runs_table(reports: &[FailoverReport]) -> Table {
    let mut t = Table::new([
        "run",
        "allocations failed",
        "failed clicks",
        "answered",
        "same desktop / placed again / none",
        "lost writes repaired",
        "serve restarted",
        "over-allocation, slots held by nobody",
    ]);
    for (i, r) in reports.iter().enumerate() {
        t.row([
            (i + 1).to_string(),
            format!("{:.2} s", r.window_ms() as f64 / 1000.0),
            r.failed_clicks().to_string(),
            r.answered.to_string(),
            format!(
                "{} / {} / {}",
                r.holdings.same, r.holdings.re_placed, r.holdings.nothing
            ),
            r.repaired().to_string(),
            r.restarted.len().to_string(),
            if r.checks.iter().all(|c| c.passed) {
                "0, 0".to_owned()
            } else {
                "FAIL".to_owned()
            },
        ]);
    }
    let median = |f: &dyn Fn(&FailoverReport) -> u64| {
        let mut v: Vec<u64> = reports.iter().map(f).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    t.row([
        "median".to_owned(),
        format!("{:.2} s", median(&|r| r.window_ms()) as f64 / 1000.0),
        median(&|r| r.failed_clicks()).to_string(),
        median(&|r| r.answered).to_string(),
        format!(
            "{} / {} / {}",
            median(&|r| r.holdings.same),
            median(&|r| r.holdings.re_placed),
            median(&|r| r.holdings.nothing)
        ),
        median(&|r| r.repaired()).to_string(),
        String::new(),
        String::new(),
    ]);
    t
}
