//! A game day: the whole system at exam scale under the faults of a real
//! exam day, on loopback, bounded in time, then checked.
//!
//! * **The cluster** ([`cluster`]): 2–3 `vdi-cluster serve` replicas
//!   sharing one store namespace (a fresh Redis key prefix on a private
//!   `redis-server`, or a fresh PostgreSQL database; removed afterwards),
//!   and several `vdi-cluster worker` agents with the simulated
//!   provisioner, many slots each — real processes of the release binary.
//! * **The exam**: booked through `POST /api/vdi/exams` (admission
//!   checked, waiting room on), then thousands of students ([`students`])
//!   click within a window through the session API, more than the fleet
//!   holds, so that some wait; a share double-click, a share submits
//!   during the day, and every one reloads when its desktop goes black or
//!   freezes — as it sees on the agents themselves ([`monitor`]).
//! * **The faults** ([`timeline`]), while they work: a worker SIGKILLed,
//!   one SIGSTOPped (a partition) then SIGCONTed, the lease-holding
//!   replica SIGKILLed, the whole fleet restarted with new boot ids, the
//!   store restarted.
//! * **A webhook receiver** ([`receiver`]) registered as an endpoint.
//! * **The checks** ([`checks`]) once the cluster settles: every student
//!   who asked holds exactly one running desktop or waits in the waiting
//!   room in order; no slot is held by nobody; 0 over-allocation; every
//!   webhook event the outbox produced reached the receiver; no process
//!   crashed; no answer the API should never give. Per fault, the time
//!   until the cluster placed students again, and until the students it
//!   displaced were back at a desktop.

pub(crate) mod checks;
pub(crate) mod cluster;
pub(crate) mod monitor;
pub(crate) mod procs;
mod receiver;
mod report;
mod run;
mod students;
mod timeline;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

pub use self::checks::{Check, StudentFigures, WebhookFigures};
pub use self::cluster::Timings;
pub use self::report::{FaultRow, GameDayReport};
pub use self::timeline::{FAULTS, Fault, Injected};

use self::procs::{LogDir, PrivateRedis};
use crate::deploy::{Backend, Deployment};

/// The booked exam's id.
const EXAM: &str = "gameday";

/// Sizes and timings of a game day.
#[derive(Debug, Clone)]
pub struct GameDayConfig {
    /// The `vdi-cluster` binary the replicas and agents run.
    pub server_bin: PathBuf,
    /// `redis://…` or `postgres://…` (loopback only).
    pub store: Backend,
    /// The `redis-server` binary of the private store (Redis only).
    pub redis_server: PathBuf,
    /// `serve` replicas.
    pub replicas: usize,
    /// Worker agents (processes), one worker each.
    pub agents: usize,
    /// Slots of each agent.
    pub slots: u32,
    /// Students of the exam. The booking is what admission accepts (the
    /// fleet less its 10 % headroom, at most the students); students
    /// beyond it are placed while slots are free and wait otherwise.
    pub students: usize,
    /// Their first clicks are spread over this window.
    pub window: Duration,
    /// Time between two faults (and after the last).
    pub fault_gap: Duration,
    /// How long the partitioned agent stays stopped (more than the TTL).
    pub partition: Duration,
    /// How long the store stays down.
    pub store_down: Duration,
    /// Share of students who submit during the day, percent.
    pub submit_percent: u32,
    /// Share of students whose first click is a double click, percent.
    pub double_click_percent: u32,
    /// Share of students who arrive late: their first click comes during
    /// the day (after the window, until shortly before the end), so that
    /// the cluster has students to place after every fault.
    pub late_percent: u32,
    /// The agents' simulated start of a session, ms.
    pub start_latency_ms: u64,
    /// The control plane's timings.
    pub timings: Timings,
    /// A waiting student asks for its place this often.
    pub poll_every: Duration,
    /// Longest wait for the cluster to settle after the last fault.
    pub settle: Duration,
    /// Longest wait for the outbox to be delivered, after that.
    pub webhook_wait: Duration,
    /// Bound on the whole run.
    pub time_limit: Duration,
    /// Seed of who double-clicks and who submits when.
    pub seed: u64,
}

impl GameDayConfig {
    /// The full game day: 3 replicas, 8 agents × 500 slots (a few hundred
    /// ordinary workers' worth), an exam booked for 3,600 and 4,000
    /// students (90 % within 20 s, the rest arriving during the day), a
    /// fault every 15 s. Four to five minutes.
    pub fn full(server_bin: PathBuf, store: Backend) -> Self {
        Self {
            server_bin,
            store,
            redis_server: PathBuf::from("redis-server"),
            replicas: 3,
            agents: 8,
            slots: 500,
            students: 4_000,
            window: Duration::from_secs(20),
            fault_gap: Duration::from_secs(15),
            partition: Duration::from_secs(7),
            store_down: Duration::from_secs(2),
            submit_percent: 20,
            double_click_percent: 10,
            late_percent: 10,
            start_latency_ms: 50,
            timings: Timings::default(),
            poll_every: Duration::from_secs(3),
            settle: Duration::from_secs(120),
            webhook_wait: Duration::from_secs(180),
            time_limit: Duration::from_secs(1200),
            seed: 42,
        }
    }

    /// The short game day of CI: 2 replicas, 4 agents × 15 slots, 80
    /// students (a third more than the slots: some wait all day), a fault
    /// every 6 s. Under a minute on a debug build.
    pub fn short(server_bin: PathBuf, store: Backend) -> Self {
        Self {
            replicas: 2,
            agents: 4,
            slots: 15,
            students: 80,
            window: Duration::from_secs(2),
            fault_gap: Duration::from_secs(6),
            partition: Duration::from_secs(4),
            store_down: Duration::from_secs(1),
            timings: Timings {
                ttl_sec: 3,
                offline_sec: 8,
                reconcile_sec: 1,
                ..Timings::default()
            },
            poll_every: Duration::from_secs(1),
            settle: Duration::from_secs(45),
            webhook_wait: Duration::from_secs(60),
            time_limit: Duration::from_secs(300),
            ..Self::full(server_bin, store)
        }
    }

    /// The fleet's slots.
    pub fn capacity(&self) -> u64 {
        self.agents as u64 * u64::from(self.slots)
    }
}

/// A deterministic hash of `(seed, i, salt)` in `0..1`.
fn unit(seed: u64, i: u64, salt: u64) -> f64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs a game day and checks it. The store's namespace is removed and
/// every process killed afterwards, also when the run fails, is
/// interrupted (Ctrl-C) or exceeds `time_limit`; an `Err` is a run that
/// could not be carried out, a report with failed checks one that was.
pub async fn game_day(config: &GameDayConfig) -> anyhow::Result<GameDayReport> {
    if !matches!(config.store, Backend::Redis(_) | Backend::Postgres(_)) {
        bail!(
            "a game day runs on redis://… or postgres://…, not {}",
            config.store
        );
    }
    if config.agents < 2 || config.replicas < 2 {
        bail!("a game day needs at least 2 agents and 2 replicas");
    }
    let mut logs = LogDir::new("gameday")?;
    let mut redis = None;
    let mut store_note = None;
    let backend = match &config.store {
        Backend::Redis(url) => match PrivateRedis::start(&config.redis_server, &logs.path).await {
            Ok(r) => {
                let url = r.url();
                redis = Some(r);
                Backend::Redis(url)
            }
            Err(e) => {
                store_note = Some(format!(
                    "no private redis-server ({e:#}): the run uses {url} and skips the store restart"
                ));
                config.store.clone()
            }
        },
        other => other.clone(),
    };
    if let Some(note) = &store_note {
        eprintln!("note: {note}");
    }
    let deployment = Deployment::open(&backend, 1, 2)
        .await
        .with_context(|| format!("open {backend}"))?;
    let run = run::run_on(config, &deployment, redis.as_mut(), &logs.path);
    let result = tokio::select! {
        r = tokio::time::timeout(config.time_limit, run) => match r {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("the game day did not finish within {:?}", config.time_limit)),
        },
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    deployment.close().await;
    drop(redis);
    let mut report = match result {
        Ok(report) => report,
        Err(e) => {
            logs.remove = false;
            return Err(e.context(format!(
                "the processes' logs are in {}",
                logs.path.display()
            )));
        }
    };
    if !report.passed() {
        logs.remove = false;
        report.logs = Some(logs.path.clone());
    }
    if let Some(note) = store_note {
        report.store_detail = format!("{} ({note})", report.store_detail);
    }
    Ok(report)
}

/// `host:port` of a URL, without its credentials.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_deterministic_and_spread() {
        let picked = (0..10_000).filter(|&i| unit(42, i, 3) < 0.1).count();
        assert!((800..1200).contains(&picked), "{picked}");
        assert_eq!(unit(1, 2, 3), unit(1, 2, 3));
        assert_ne!(unit(1, 2, 3), unit(1, 2, 4));
    }

    #[test]
    fn the_short_day_is_smaller_than_the_full_one() {
        let full = GameDayConfig::full("x".into(), Backend::Memory);
        let short = GameDayConfig::short("x".into(), Backend::Memory);
        assert!(short.capacity() < full.capacity());
        assert!(
            short.students as u64 > short.capacity(),
            "some students wait"
        );
        assert!(
            full.students as u64 > full.capacity() * 9 / 10,
            "more students than the booking"
        );
        assert!(short.partition > Duration::from_secs(short.timings.ttl_sec));
        assert!(full.partition > Duration::from_secs(full.timings.ttl_sec));
        assert!(full.partition < full.fault_gap && short.partition < short.fault_gap);
        assert_eq!(host_of("postgres://u:p@127.0.0.1:5432/x"), "127.0.0.1:5432");
    }
}
