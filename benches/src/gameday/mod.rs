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

mod checks;
mod cluster;
mod monitor;
mod procs;
mod receiver;
mod students;
mod timeline;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use vdi_cluster_core::ServiceConfig;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::time::{Clock, SystemClock};
use vdi_cluster_protocol::exams::BookExamRequest;

pub use self::checks::{Check, StudentFigures, WebhookFigures};
pub use self::cluster::Timings;
pub use self::timeline::{FAULTS, Fault, Injected};

use self::cluster::{Cluster, ClusterSpec, StoreArgs};
use self::monitor::{Monitor, POLL_EVERY};
use self::procs::{LogDir, PrivateRedis};
use self::students::{Crowd, Habits, Phase, Plan};
use self::timeline::{Schedule, StoreHandle};
use crate::deploy::{Backend, Deployment};
use crate::http::with_database;
use crate::table::{Table, thousands};

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

/// One fault's row: what was done, and how the cluster recovered.
#[derive(Debug, Clone)]
pub struct FaultRow {
    /// The fault as injected.
    pub injected: Injected,
    /// From the fault to the first placement made after it.
    pub first_placement: Option<Duration>,
    /// Students whose desktop went black or froze during this fault.
    pub displaced: u64,
    /// Of those, back at a running desktop: the median and the slowest
    /// time from the fault.
    pub back_p50: Option<Duration>,
    /// The slowest.
    pub back_last: Option<Duration>,
    /// Displaced and not back at a desktop by the end (waiting, or lost).
    pub not_back: u64,
}

/// What a game day found.
#[derive(Debug, Clone)]
pub struct GameDayReport {
    /// `redis` or `postgres`.
    pub backend: &'static str,
    /// Where the store was (the private server's URL, or the database).
    pub store_detail: String,
    /// The configuration.
    pub config: GameDayConfig,
    /// Seats booked for the exam.
    pub booked: u32,
    /// The faults, in order.
    pub faults: Vec<FaultRow>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// The students at the end.
    pub students: StudentFigures,
    /// The webhooks.
    pub webhooks: WebhookFigures,
    /// Requests the students sent, and how they were answered.
    pub requests: Value,
    /// From the end of the last fault's gap until the cluster settled
    /// (`None`: it did not within the bound).
    pub settled_after: Option<Duration>,
    /// The whole run.
    pub elapsed: Duration,
    /// The processes' logs, kept when a check failed.
    pub logs: Option<PathBuf>,
}

impl GameDayReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The failed checks' names.
    pub fn failures(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    /// The line above the tables.
    pub fn title(&self) -> String {
        let c = &self.config;
        format!(
            "game day on {} — {} replicas, {} agents × {} slots ({} slots), exam booked for {} \
             (waiting room on), {} students clicking within {} s, a fault every {} s",
            self.backend,
            c.replicas,
            c.agents,
            c.slots,
            thousands(c.capacity() as f64),
            thousands(f64::from(self.booked)),
            thousands(c.students as f64),
            c.window.as_secs(),
            c.fault_gap.as_secs()
        )
    }

    /// The checks, then the faults.
    pub fn tables(&self) -> Vec<Table> {
        let mut checks = Table::new(["check", "result", "found"]);
        for c in &self.checks {
            checks.row([
                c.name.to_owned(),
                if c.passed { "pass" } else { "FAIL" }.to_owned(),
                c.detail.clone(),
            ]);
        }
        let mut faults = Table::new([
            "fault",
            "at",
            "what",
            "placing again after",
            "displaced",
            "back at a desktop p50",
            "last",
            "not back",
        ]);
        let opt = |d: Option<Duration>| d.map_or("–".to_owned(), secs);
        for f in &self.faults {
            faults.row([
                f.injected.fault.name().to_owned(),
                secs(f.injected.offset),
                f.injected.what.clone(),
                opt(f.first_placement),
                f.displaced.to_string(),
                opt(f.back_p50),
                opt(f.back_last),
                f.not_back.to_string(),
            ]);
        }
        vec![checks, faults]
    }

    /// The report as one JSON object.
    pub fn json(&self) -> Value {
        let c = &self.config;
        let d = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        json!({
            "scenario": "gameday",
            "store": self.backend,
            "storeDetail": self.store_detail,
            "replicas": c.replicas, "agents": c.agents, "slotsPerAgent": c.slots,
            "slots": c.capacity(), "booked": self.booked, "students": c.students,
            "windowSec": c.window.as_secs_f64(), "faultGapSec": c.fault_gap.as_secs_f64(),
            "passed": self.passed(),
            "checks": self.checks.iter().map(|ch| json!({
                "name": ch.name, "passed": ch.passed, "detail": ch.detail,
            })).collect::<Vec<_>>(),
            "faults": self.faults.iter().map(|f| json!({
                "fault": f.injected.fault.name(), "what": f.injected.what,
                "atSec": f.injected.offset.as_secs_f64(),
                "placingAgainAfterSec": d(f.first_placement),
                "displaced": f.displaced,
                "backP50Sec": d(f.back_p50), "backLastSec": d(f.back_last),
                "notBack": f.not_back,
            })).collect::<Vec<_>>(),
            "studentsAtEnd": {
                "asked": self.students.asked, "seated": self.students.seated,
                "waiting": self.students.waiting, "submitted": self.students.submitted,
            },
            "webhooks": {
                "produced": self.webhooks.produced, "received": self.webhooks.received,
                "repeats": self.webhooks.repeats,
                "byType": self.webhooks.by_type.iter()
                    .map(|(k, (p, r))| (k.clone(), json!({"produced": p, "received": r})))
                    .collect::<serde_json::Map<_, _>>(),
            },
            "requests": self.requests,
            "settledAfterSec": d(self.settled_after),
            "elapsedSec": self.elapsed.as_secs_f64(),
            "logs": self.logs.as_ref().map(|p| p.display().to_string()),
        })
    }
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
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
    let mut logs = LogDir::new()?;
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
    let run = run_on(config, &deployment, redis.as_mut(), &logs.path);
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

/// Books the exam for what admission accepts (the fleet less its
/// headroom), at most the students, for two hours from now.
async fn book(cluster: &Cluster, config: &GameDayConfig) -> anyhow::Result<u32> {
    let headroom = u64::from(ServiceConfig::default().exam_headroom_percent.min(100));
    let bookable = config.capacity() * (100 - headroom) / 100;
    let booked = u32::try_from(bookable.min(config.students as u64))?.max(1);
    let now = SystemClock.now();
    let exam = BookExamRequest {
        exam_id: EXAM.into(),
        name: "Game day".into(),
        starts_at: format_rfc3339(now),
        ends_at: format_rfc3339(now.plus(Duration::from_secs(2 * 3600))),
        students: booked,
        constraints: None,
        prewarm: None,
        teardown_sec: None,
        queue: Some(true),
    };
    let (status, body) = cluster
        .admin_post("/api/vdi/exams", &serde_json::to_value(&exam)?)
        .await?;
    if status != 201 {
        bail!("booking the exam: {status} {body}");
    }
    Ok(booked)
}

async fn run_on(
    config: &GameDayConfig,
    deployment: &Deployment,
    redis: Option<&mut PrivateRedis>,
    logs: &std::path::Path,
) -> anyhow::Result<GameDayReport> {
    let started = Instant::now();
    let (store, store_detail) = match deployment.backend() {
        Backend::Redis(url) => {
            let (_, prefix) = deployment.redis_namespace().context("Redis prefix")?;
            (
                StoreArgs::Redis {
                    url: url.clone(),
                    prefix: prefix.to_owned(),
                },
                format!(
                    "{url}, key prefix {prefix}{}",
                    if redis.is_some() {
                        " (a redis-server of this run, AOF with appendfsync always)"
                    } else {
                        ""
                    }
                ),
            )
        }
        Backend::Postgres(url) => {
            let db = deployment
                .pg_options()
                .and_then(|o| o.get_database())
                .context("database name")?;
            (
                StoreArgs::Postgres {
                    url: with_database(url, db),
                },
                format!("database {db} of the server at {}", host_of(url)),
            )
        }
        other => bail!("no game day on {other}"),
    };
    let spec = ClusterSpec {
        server_bin: config.server_bin.clone(),
        store,
        replicas: config.replicas,
        agents: config.agents,
        slots: config.slots,
        start_latency_ms: config.start_latency_ms,
        timings: config.timings,
    };
    let mut cluster = Cluster::start(&spec, logs).await?;
    let receiver = receiver::Receiver::start().await?;
    let (status, created) = cluster
        .admin_post(
            "/api/vdi/webhooks",
            &json!({"url": receiver.url, "description": "game day receiver"}),
        )
        .await?;
    if status != 201 {
        bail!("registering the webhook receiver: {status} {created}");
    }
    let endpoint = created["id"]
        .as_str()
        .context("the endpoint's id")?
        .to_owned();
    receiver.set_secret(
        created["secret"]
            .as_str()
            .context("the endpoint's secret")?,
    );
    let booked = book(&cluster, config).await?;
    // Every replica sees the booking once its cached calendar expires.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let monitor = Arc::new(Monitor::new(
        cluster
            .agents
            .iter()
            .map(|a| (a.code.clone(), a.base.clone()))
            .collect(),
        cluster.cluster_token.clone(),
    )?);
    let monitoring = tokio::spawn(Arc::clone(&monitor).run());
    tokio::time::sleep(POLL_EVERY * 2).await;

    let first_click = Instant::now() + Duration::from_millis(200);
    let schedule = Schedule {
        first_click,
        window: config.window,
        gap: config.fault_gap,
        partition: config.partition,
        store_down: config.store_down,
    };
    let submit_from = first_click + config.window;
    // Submissions go on until shortly before the end, past the last fault.
    let submit_span = schedule.end() - config.fault_gap / 4 - submit_from;
    let n = config.students.max(1);
    let until = submit_from + submit_span;
    let plans: Vec<Plan> = (0..n)
        .map(|i| {
            let k = i as u64;
            let share =
                |salt: u64, percent: u32| unit(config.seed, k, salt) * 100.0 < f64::from(percent);
            let click_at = if share(4, config.late_percent) {
                submit_from + submit_span.mul_f64(unit(config.seed, k, 5))
            } else {
                first_click + config.window.mul_f64(i as f64 / n as f64)
            };
            // A submission somewhere between the student's click (or the
            // window's end) and shortly before the day's end.
            let from = click_at.max(submit_from);
            let submit_at = share(1, config.submit_percent)
                .then(|| from + (until - from).mul_f64(unit(config.seed, k, 2)));
            Plan {
                user: format!("s-{i:05}"),
                click_at,
                submit_at,
                double_click: share(3, config.double_click_percent),
            }
        })
        .collect();
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let crowd = Arc::new(Crowd::new(
        EXAM.into(),
        cluster.replicas.iter().map(|r| r.base.clone()).collect(),
        (cluster.service_jwt.clone(), cluster.admin_jwt.clone()),
        Arc::clone(&monitor),
        plans,
        FAULTS.len(),
        phase_rx,
        Habits {
            check_every: Duration::from_millis(500),
            poll_every: config.poll_every,
            retry_pause: Duration::from_secs(1),
            freeze: Duration::from_secs(2),
        },
    )?);
    let mut students = JoinSet::new();
    for i in 0..n {
        students.spawn(Arc::clone(&crowd).live(i));
    }
    let auditing = tokio::spawn(Arc::clone(&crowd).audit_waiting_room());

    let store_handle = match (redis, deployment.backend()) {
        (Some(r), _) => StoreHandle::Redis(r),
        (None, Backend::Postgres(_)) => StoreHandle::Postgres(deployment),
        (None, other) => StoreHandle::SharedRedis(other.url().to_owned()),
    };
    let ran = timeline::run(&mut cluster, store_handle, &crowd, schedule).await;
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            students.abort_all();
            monitoring.abort();
            auditing.abort();
            return Err(e);
        }
    };

    // Settle: nobody submits any more; wait until every student is
    // settled, every agent runs exactly the students seated on it, and
    // nobody waits while the control plane has a free slot.
    let _ = phase_tx.send(Phase::Settling);
    let settle_from = Instant::now();
    let settle_deadline = settle_from + config.settle;
    let mut last_look;
    let settled_after = loop {
        let round = Instant::now();
        tokio::time::sleep(POLL_EVERY * 2 + Duration::from_millis(100)).await;
        let unsettled = crowd.unsettled(round);
        let seated = crowd.seated();
        let disagreeing = monitor
            .codes()
            .filter(|&code| {
                !monitor.sessions_since(code, round).is_some_and(|keys| {
                    keys.iter()
                        .all(|k| seated.get(k).is_some_and(|w| w == code))
                        && seated
                            .iter()
                            .filter(|(_, w)| w.as_str() == code)
                            .all(|(k, _)| keys.contains(k))
                })
            })
            .count();
        let waiting = crowd
            .snapshot()
            .iter()
            .filter(|s| s.holding == students::Holding::Queued)
            .count();
        let room = cluster
            .summary()
            .await
            .map_or(0, |s| s.total_available_sessions);
        // The control plane's records on each worker against what its
        // agent runs (read only once the rest agrees: it costs a call per
        // worker).
        let mut unmatched = 0;
        if unsettled == 0 && disagreeing == 0 {
            for code in monitor.codes() {
                let runs = monitor.sessions_since(code, round);
                let records = cluster.worker_sessions(code).await.ok();
                let agree = match (runs, records) {
                    (Some(runs), Some(records)) => {
                        records.sessions.len() == runs.len()
                            && records
                                .sessions
                                .iter()
                                .all(|d| runs.contains(&format!("{}/{}", d.exam_id, d.user_id)))
                    }
                    _ => false,
                };
                if !agree {
                    unmatched += 1;
                }
            }
        }
        last_look = format!(
            "{unsettled} students neither waiting nor at a running desktop, {disagreeing} agents \
             running other sessions than the students hold, {unmatched} workers whose records \
             differ from what runs, {waiting} waiting while {room} slots are free"
        );
        if unsettled == 0 && disagreeing == 0 && unmatched == 0 && (waiting == 0 || room == 0) {
            break Some(settle_from.elapsed());
        }
        if Instant::now() > settle_deadline {
            break None;
        }
    };
    // While the checks read the cluster, waiting students keep asking for
    // their place (or they would leave the room); nobody else acts.
    let _ = phase_tx.send(Phase::Hold);
    tokio::time::sleep(POLL_EVERY * 2).await;

    let mut checks = Vec::new();
    let (held, figures) = checks::holdings(&cluster, &crowd, Duration::from_secs(15)).await;
    checks.extend(held);
    let store = deployment.reconnect().await?;
    checks.push(checks::over_allocation(&monitor, store.as_ref()).await);
    let (hooks, webhook_figures) =
        checks::webhooks(store.as_ref(), &endpoint, &receiver, config.webhook_wait).await;
    checks.push(hooks);
    let _ = phase_tx.send(Phase::Stop);
    let stopping = Instant::now() + Duration::from_secs(3);
    while !students.is_empty() && Instant::now() < stopping {
        let _ = tokio::time::timeout(Duration::from_millis(200), students.join_next()).await;
    }
    students.abort_all();
    auditing.abort();
    monitoring.abort();
    checks.push(Check {
        name: "no process crashed",
        passed: ran.crashes.is_empty(),
        detail: if ran.crashes.is_empty() {
            format!(
                "{} replicas and {} agents exited only when killed",
                cluster.replicas.len(),
                cluster.agents.len()
            )
        } else {
            ran.crashes.join(" | ")
        },
    });
    let log = crowd.log.lock().expect("log lock").clone();
    let a = &log.answers;
    checks.push(Check {
        name: "no answer the API should never give",
        passed: a.unexpected == 0,
        detail: if a.unexpected == 0 {
            format!(
                "{} requests: only 200/201/202/404/503 (and {} transport errors while replicas were down)",
                thousands(a.requests as f64),
                a.transport_errors
            )
        } else {
            format!("{} unexpected: {}", a.unexpected, a.first_unexpected.join(" | "))
        },
    });
    let au = &log.audits;
    checks.push(Check {
        name: "the waiting room in order all day (listing read every 2 s)",
        passed: au.problems == 0 && au.listings > 0,
        detail: if au.problems == 0 {
            format!(
                "{} listings, up to {} waiting: positions 1..n, nobody twice, nobody overtaken",
                au.listings, au.most_waiting
            )
        } else {
            format!(
                "{} problems in {} listings: {}",
                au.problems,
                au.listings,
                au.first_problems.join(" | ")
            )
        },
    });
    let dd = &log.doubles;
    checks.push(Check {
        name: "double clicks never refused while the student holds a slot",
        passed: dd.refused_while_held == 0 && dd.two_dispatches == 0,
        detail: format!(
            "{} double clicks: {} answered 503 beside a desktop, {} answered two different dispatches, \
             {} queued beside a desktop",
            dd.students, dd.refused_while_held, dd.two_dispatches, dd.queued_while_held
        ),
    });
    checks.push(Check {
        name: "settled after the faults (records = what runs, nobody waits beside a free slot)",
        passed: settled_after.is_some(),
        detail: match settled_after {
            Some(after) => format!("in {:.1} s", after.as_secs_f64()),
            None => format!("not within {} s: {last_look}", config.settle.as_secs()),
        },
    });

    let states = crowd.snapshot();
    let faults = ran
        .injected
        .iter()
        .enumerate()
        .map(|(k, injected)| {
            let first_placement = log
                .placements
                .iter()
                .filter(|&&p| p >= injected.at_ms)
                .min()
                .map(|p| Duration::from_millis(p - injected.at_ms));
            let mut back = log.back[k].clone();
            back.sort();
            let not_back = states
                .iter()
                .filter(|s| s.displaced == Some(Some(k)))
                .count() as u64;
            FaultRow {
                injected: injected.clone(),
                first_placement,
                displaced: log.displaced[k],
                back_p50: back.get(back.len() / 2).copied(),
                back_last: back.last().copied(),
                not_back,
            }
        })
        .collect();
    let requests = json!({
        "sent": a.requests, "placed": a.placed, "existing": a.existing, "queued": a.queued,
        "refused503": a.refused, "transportErrors": a.transport_errors,
        "unexpected": a.unexpected, "displacedOutsideFaults": log.displaced_without_fault,
        "doubleClicks": dd.students,
    });
    Ok(GameDayReport {
        backend: deployment.backend().name(),
        store_detail,
        config: config.clone(),
        booked,
        faults,
        checks,
        students: figures,
        webhooks: webhook_figures,
        requests,
        settled_after,
        elapsed: started.elapsed(),
        logs: None,
    })
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
