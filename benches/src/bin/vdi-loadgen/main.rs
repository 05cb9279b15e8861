//! `vdi-loadgen`: the exam-start load generator of vdi-cluster.
//!
//! ```text
//! vdi-loadgen surge     --store redis://127.0.0.1:6379
//! vdi-loadgen heartbeat --store postgres://postgres@127.0.0.1:5432/postgres
//! vdi-loadgen steady    --store memory
//! vdi-loadgen seat      --store http://127.0.0.1:18080 --server-store redis://127.0.0.1:6379
//! vdi-loadgen gameday   --store redis://127.0.0.1:6379
//! vdi-loadgen cover     --store redis://127.0.0.1:6379 --dispatches 100000
//! vdi-loadgen failover  --store postgres --sync
//! ```
//!
//! Every scenario runs `--runs` times (default 3) on a fresh namespace
//! (random Redis prefix, fresh PostgreSQL database, removed afterwards) and
//! prints one table row per run and the median. `surge` measures the
//! baselines (raw ceiling, naive) in the same run. See BENCHMARKS.md.
//!
//! `args` holds the flags, `run` the one run-and-report path, and
//! `surge`, `heartbeat`, `steady`, `seat` and `cover` what each scenario
//! measures and prints. `gameday` is one run with checks, not a
//! measurement: it has flags and a report of its own; so has `failover`,
//! whose runs start a store deployment of their own.

mod args;
mod cover;
mod failover;
mod gameday;
mod heartbeat;
mod run;
mod seat;
mod steady;
mod storm;
mod surge;

use clap::{Parser, Subcommand};

use self::args::{CoverArgs, HeartbeatArgs, SeatArgs, SteadyArgs, SurgeArgs};
use self::run::run_and_report;

#[derive(Debug, Parser)]
#[command(
    name = "vdi-loadgen",
    version,
    about = "Exam-start load generator of vdi-cluster"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exam start: every student allocates at once. Also measures the
    /// backend's raw ceiling and the naive approach in the same run.
    Surge(SurgeArgs),
    /// Every worker heartbeats as fast as it can.
    Heartbeat(HeartbeatArgs),
    /// An exam in progress: allocations, releases and heartbeats at a fixed
    /// rate, first without, then with reconcile passes running.
    Steady(SteadyArgs),
    /// Time to seat an exam: students click within a window on worker
    /// nodes whose starts take 0.3–2 s; the time from the first click to
    /// the last seat against its physical bound (needs an http:// store).
    /// With --storm, in process on nodes in a boot storm, without and
    /// with paced starts.
    Seat(SeatArgs),
    /// A game day: serve replicas and worker agents as real processes on
    /// one store, a booked exam of thousands of students, and a timeline
    /// of faults (a worker killed, a partition, a replica killed, the
    /// fleet restarted, the store restarted); then checks every student's
    /// desktop, the slots, over-allocation and the webhooks. Exits
    /// non-zero when a check fails.
    Gameday(gameday::GameDayArgs),
    /// A full reconcile pass: the time to cover every dispatch (100,000
    /// by default) in bounded steps resumed from a cursor, an operator's
    /// pass, and the recount alone.
    Cover(CoverArgs),
    /// A store failover during an exam-start surge: a Redis primary with
    /// Sentinel, or a PostgreSQL primary with a standby, started for the
    /// run; serve replicas and worker agents as real processes; thousands
    /// of students clicking while the primary is SIGKILLed. Reports the
    /// window during which allocations failed, the students answered and
    /// where they are, the lost writes repaired, over-allocation and the
    /// slots after one reconcile pass. Exits non-zero when a figure that
    /// must hold does not.
    Failover(failover::FailoverArgs),
}

async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Surge(args) => run_and_report(surge::Surge::new(args)?).await,
        Command::Heartbeat(args) => run_and_report(heartbeat::Heartbeat::new(args)).await,
        Command::Steady(args) => run_and_report(steady::Steady::new(args)?).await,
        Command::Seat(args) if args.storm => storm::run(&args).await,
        Command::Seat(args) => run_and_report(seat::Seat::new(args)?).await,
        Command::Gameday(args) => gameday::run(args).await,
        Command::Cover(args) => run_and_report(cover::Cover::new(args)?).await,
        Command::Failover(args) => failover::run(args).await,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli.scenario).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
