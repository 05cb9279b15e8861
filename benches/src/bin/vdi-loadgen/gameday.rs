//! `gameday`: the whole system through an exam day's faults, checked at
//! the end (see `vdi_cluster_benches::gameday`). One run; the exit status
//! is non-zero when a check fails.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use vdi_cluster_benches::deploy::Backend;
use vdi_cluster_benches::gameday::{GameDayConfig, game_day};
use vdi_cluster_benches::http::default_server_bin;

#[derive(Debug, Args)]
pub(crate) struct GameDayArgs {
    /// The store the replicas share: redis://127.0.0.1:PORT (a private
    /// redis-server is started on a free port for the run, so that its
    /// restart touches nobody's data; without one, this server under a
    /// fresh key prefix, and no store restart) or
    /// postgres://USER@127.0.0.1:PORT/DB (a fresh database beside DB,
    /// dropped afterwards). Loopback only.
    #[arg(long)]
    store: Backend,
    /// The short game day of CI (2 replicas, 4 agents × 15 slots, 80
    /// students, a fault every 6 s); the flags below still apply.
    #[arg(long)]
    short: bool,
    /// `serve` replicas [default: 3].
    #[arg(long)]
    replicas: Option<usize>,
    /// Worker agents (processes) [default: 8].
    #[arg(long)]
    agents: Option<usize>,
    /// Slots of each agent [default: 500].
    #[arg(long)]
    slots: Option<u32>,
    /// Students of the exam [default: 4,000].
    #[arg(long)]
    students: Option<usize>,
    /// Their first clicks are spread over this many seconds [default: 20].
    #[arg(long)]
    window_secs: Option<u64>,
    /// Seconds between two faults [default: 15].
    #[arg(long)]
    fault_gap_secs: Option<u64>,
    /// Longest wait for the cluster to settle after the last fault, s
    /// [default: 120].
    #[arg(long)]
    settle_secs: Option<u64>,
    /// The replicas' `--live-session-grace-sec`, the longest a record may
    /// outlive its desktop [default: 10]. At the control plane's own
    /// default (60) with a settle window shorter than it, a record left
    /// without its desktop by a fault fails the settle check instead of
    /// being freed by the grace.
    #[arg(long)]
    live_session_grace_sec: Option<u64>,
    /// Seed of who double-clicks and who submits when.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The `vdi-cluster` binary (default: beside this one).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The `redis-server` binary of the private store.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Also print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

impl GameDayArgs {
    fn config(&self) -> GameDayConfig {
        let bin = self.server_bin.clone().unwrap_or_else(default_server_bin);
        let mut c = if self.short {
            GameDayConfig::short(bin, self.store.clone())
        } else {
            GameDayConfig::full(bin, self.store.clone())
        };
        c.redis_server = self.redis_server.clone();
        c.seed = self.seed;
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
            c.window = Duration::from_secs(v);
        }
        if let Some(v) = self.fault_gap_secs {
            c.fault_gap = Duration::from_secs(v);
            c.partition = c.partition.min(c.fault_gap * 2 / 3);
        }
        if let Some(v) = self.live_session_grace_sec {
            c.timings.live_session_grace_sec = v;
        }
        if let Some(v) = self.settle_secs {
            c.settle = Duration::from_secs(v);
        }
        c
    }
}

/// Runs the game day and prints its report; `Ok(false)` when a check
/// failed.
pub(crate) async fn run(args: GameDayArgs) -> anyhow::Result<bool> {
    let config = args.config();
    eprintln!(
        "game day on {}: {} replicas, {} agents × {} slots, {} students; about {} s",
        config.store.name(),
        config.replicas,
        config.agents,
        config.slots,
        config.students,
        (config.window + config.fault_gap * 6).as_secs() + 20
    );
    let report = game_day(&config).await?;
    if args.json {
        println!("{}", report.json());
    }
    println!("\n{}\n", report.title());
    println!("store: {}\n", report.store_detail);
    for table in report.tables() {
        println!("{}", table.render());
    }
    if let Some(after) = report.settled_after {
        println!(
            "settled {:.1} s after the last fault's gap; the whole run took {:.0} s",
            after.as_secs_f64(),
            report.elapsed.as_secs_f64()
        );
    }
    let passed = report.passed();
    if !passed {
        eprintln!("FAILED: {}", report.failures().join("; "));
        if let Some(logs) = &report.logs {
            eprintln!("the processes' logs are kept in {}", logs.display());
        }
    }
    Ok(passed)
}
