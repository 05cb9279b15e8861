//! An exam day, simulated in-process on the embedded (in-memory) store.
//!
//! Twenty worker nodes heartbeat, 350 students of three exams click "start"
//! in the same instant through two control-plane replicas, a worker dies
//! mid-exam and its students are moved, another is drained for maintenance
//! and disabled, and everyone submits. Time is simulated; the surge runs
//! with real concurrency.
//!
//! Run with: `cargo run -p vdi-cluster-examples --example exam_day`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vdi_cluster_core::capacity::{CapacityInput, CapacitySpec};
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::health::{HeartbeatStamp, ResourceUsage};
use vdi_cluster_core::service::HealthMonitor;
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{
    AdminAction, ClusterService, Error, ExamId, Heartbeat, ManualClock, MemoryStore, ServiceConfig,
    SessionKey, Timestamp, WorkerDescription, WorkerId,
};

/// 07:00:00 on exam day, UTC.
const MORNING: Timestamp = Timestamp(1_781_506_800_000);
const EXAMS: [(&str, u32); 3] = [("MATH101", 150), ("PHYS201", 120), ("CS310", 80)];

struct Day {
    clock: ManualClock,
    workers: SimulatedWorkers,
    events: RecordingSink,
    replicas: [Arc<ClusterService>; 2],
    fleet: Vec<(WorkerId, CapacitySpec)>,
    seq: u64,
    shown: usize,
    monitor: HealthMonitor,
    peak: BTreeMap<WorkerId, usize>,
}

fn clock_text(t: Timestamp) -> String {
    let secs = t.as_millis() / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

impl Day {
    fn say(&self, text: impl AsRef<str>) {
        println!("{}  {}", clock_text(self.clock.now_ts()), text.as_ref());
    }

    fn advance(&self, minutes: u64) {
        self.clock.advance(Duration::from_secs(minutes * 60));
    }

    /// Every live worker reports what it really runs (seed 000's body plus
    /// boot id, sequence and live session ids).
    async fn heartbeats(&mut self, dead: &[&str]) {
        self.seq += 1;
        for (id, capacity) in &self.fleet {
            if dead.contains(&id.as_str()) {
                continue;
            }
            let live = self.workers.sessions(id);
            let peak = self.peak.entry(id.clone()).or_default();
            *peak = (*peak).max(live.len());
            let hb = Heartbeat {
                worker: id.clone(),
                description: WorkerDescription {
                    name: id.as_str().replace("worker-node-", "Worker Node "),
                    api_base_url: format!("https://{id}.exam.example.edu.vn"),
                    ..Default::default()
                },
                capacity: *capacity,
                active_sessions: live.len() as u32,
                stamp: HeartbeatStamp {
                    boot_id: Some(format!("{id}-boot-1")),
                    seq: Some(self.seq),
                },
                live_sessions: Some(live),
                live_details: Default::default(),
                prewarm_pool: Default::default(),
                resources: ResourceUsage::default(),
                host: Default::default(),
            };
            self.replicas[0].heartbeat(hb).await.expect("heartbeat");
        }
    }

    /// Prints availability changes (what the background loop's health
    /// monitor emits) and every new event.
    async fn timeline(&mut self) {
        let views = self.replicas[0].worker_views().await.expect("views");
        for kind in self.monitor.observe(&views, self.clock.now_ts()) {
            if let EventKind::WorkerAvailability {
                worker,
                from,
                to,
                reason,
            } = kind
            {
                self.say(format!("  event: {worker} {from} -> {to} ({reason})"));
            }
        }
        let events = self.events.events();
        for e in &events[self.shown..] {
            let text = match &e.kind {
                EventKind::WorkerAvailability {
                    worker, from, to, ..
                } => format!("event: {worker} {from} -> {to}"),
                EventKind::WorkerPolicy {
                    worker,
                    from,
                    to,
                    actor,
                } => {
                    format!("event: {worker} policy {from} -> {to} (by {actor})")
                }
                EventKind::SessionMigrated { session, from, to } => {
                    format!("event: {session} moved {from} -> {to}")
                }
                EventKind::MigrationFailed {
                    session, reason, ..
                } => format!("event: {session} NOT moved: {reason}"),
                EventKind::MigrationSuspended { reason } => {
                    format!("event: migration held back: {reason}")
                }
                EventKind::SessionsOrphaned { worker, count } => {
                    format!("event: {count} session(s) orphaned on {worker}")
                }
                _ => continue,
            };
            println!("{}    {text}", clock_text(e.at));
        }
        self.shown = events.len();
    }

    async fn summary(&self) {
        let s = self.replicas[0].summary().await.expect("summary");
        self.say(format!(
            "summary: workers healthy/total {}/{} | slots available/max {}/{} | active sessions {} | draining {} drained {} disabled {}",
            s.healthy_workers,
            s.total_workers,
            s.total_available_sessions,
            s.total_max_sessions,
            s.total_active_sessions,
            s.draining_workers,
            s.drained_workers,
            s.disabled_workers
        ));
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        vdi_cluster_core::Clock::now(self)
    }
}

fn fleet() -> Vec<(WorkerId, CapacitySpec)> {
    (1..=20)
        .map(|i| {
            // Sixteen seed-000 nodes (32 cores / 64 GiB → 18 slots) and four
            // larger ones (48 cores / 96 GiB → 29 slots).
            let (cpu, mem) = if i % 5 == 0 {
                (48.0, 98_304)
            } else {
                (32.0, 65_536)
            };
            let capacity = CapacitySpec::new(CapacityInput {
                total_cpu_cores: cpu,
                total_memory_mb: mem,
                reserved_cpu_cores: 4.0,
                reserved_memory_mb: 8192,
                vm_cpu_cores: 1.5,
                vm_memory_mb: 2048,
            })
            .expect("valid capacity");
            (
                WorkerId::parse("code", format!("worker-node-{i:02}")).expect("valid code"),
                capacity,
            )
        })
        .collect()
}

fn students() -> Vec<SessionKey> {
    EXAMS
        .iter()
        .flat_map(|(exam, n)| {
            (1..=*n).map(move |i| SessionKey::parse(*exam, format!("sv{i:04}")).expect("valid key"))
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let clock = ManualClock::new(MORNING);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let workers = SimulatedWorkers::new();
    let events = RecordingSink::default();
    let replica = |n: u64| {
        Arc::new(
            ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
                .config(ServiceConfig {
                    seed: n,
                    replica_id: format!("control-plane-{n}"),
                    ..ServiceConfig::default()
                })
                .clock(Arc::new(clock.clone()))
                .events(Arc::new(events.clone()))
                .build(),
        )
    };
    let mut day = Day {
        replicas: [replica(1), replica(2)],
        clock,
        workers,
        events,
        fleet: fleet(),
        seq: 0,
        shown: 0,
        monitor: HealthMonitor::default(),
        peak: BTreeMap::new(),
    };

    println!("== Exam day: 20 workers, 350 students in MATH101, PHYS201 and CS310 ==\n");
    day.say("T-120: worker nodes start and heartbeat every 20 s");
    day.heartbeats(&[]).await;
    day.timeline().await;
    day.summary().await;

    day.advance(90);
    day.heartbeats(&[]).await;
    for (exam, n) in EXAMS {
        let report = day.replicas[0]
            .prewarm(
                ExamId::parse("examId", exam).expect("valid"),
                n / 4,
                Default::default(),
            )
            .await
            .expect("prewarm");
        day.say(format!(
            "T-30: prewarm {exam}: asked {}, planned {} on {} workers, started {}",
            report.requested,
            report.planned,
            report.shares.len(),
            report.started
        ));
    }

    day.advance(15);
    day.heartbeats(&[]).await;
    let report = day.replicas[0]
        .reconcile_now("proctor-hanh")
        .await
        .expect("reconcile");
    day.say(format!(
        "T-15: \"Reconcile now\": {} workers checked, {} stale removed, drift {}",
        report.workers_checked,
        report.stale_removed + report.gone_removed,
        report.drift.len()
    ));

    day.advance(15);
    day.heartbeats(&[]).await;
    day.say("T0: 350 students click \"start\" at once, through two control-plane replicas");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, key) in students().into_iter().enumerate() {
        let svc = Arc::clone(&day.replicas[i % 2]);
        tasks.push(tokio::spawn(async move {
            svc.allocate(key, Default::default()).await
        }));
    }
    let (mut placed, mut refused, mut retries) = (0, 0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(a) => {
                placed += 1;
                retries += a.contention_retries;
            }
            Err(Error::NoCapacity(_) | Error::AllocationInProgress(_)) => refused += 1,
            Err(e) => panic!("allocation failed: {e}"),
        }
    }
    day.say(format!(
        "T0: placed {placed}, refused {refused}, contention retries {retries}, in {:.1} ms of real time",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    day.heartbeats(&[]).await;
    day.summary().await;

    // The two busiest workers play the rest of the day's roles.
    let mut busiest = day.replicas[0].worker_views().await.expect("views");
    busiest.sort_by_key(|v| std::cmp::Reverse(v.used_sessions));
    let dead_id = busiest[0].id().clone();
    let maintenance_id = busiest[1].id().clone();
    let dead = dead_id.as_str();

    // A worker dies 25 minutes in.
    day.advance(25);
    day.heartbeats(&[]).await;
    let victims = day.workers.sessions(&dead_id);
    day.workers.kill(&dead_id);
    day.say(format!(
        "T+25m: {dead} loses power with {} students on it",
        victims.len()
    ));
    for _ in 0..7 {
        day.clock.advance(Duration::from_secs(20));
        day.heartbeats(&[dead]).await;
    }
    day.say(format!(
        "T+27m: {dead} missed heartbeats past the 120 s TTL: it takes no new sessions"
    ));
    day.timeline().await;
    day.summary().await;
    let returning = &victims[..victims.len().min(5)];
    for key in returning {
        let again = day.replicas[1]
            .allocate(key.clone(), Default::default())
            .await
            .expect("re-dispatch");
        day.say(format!(
            "T+27m: {key} reloads the page -> new desktop on {} at once",
            again.dispatch.worker
        ));
    }
    day.timeline().await;
    for _ in 0..8 {
        day.advance(1);
        day.heartbeats(&[dead]).await;
    }
    day.timeline().await;
    let report = day.replicas[0].reconcile().await.expect("reconcile");
    day.say(format!(
        "T+35m: {dead} is offline past the 600 s hard timeout; reconcile: {} of its sessions found, {} migrated, {} failed",
        report.failed_worker_sessions, report.migrated, report.migration_failed
    ));
    day.timeline().await;
    day.summary().await;

    // Maintenance: drain a node without dropping anyone.
    day.advance(5);
    day.heartbeats(&[dead]).await;
    let node = maintenance_id;
    let name = node.as_str();
    day.replicas[0]
        .admin(&node, AdminAction::Drain { deadline: None }, "admin-minh")
        .await
        .expect("drain");
    let info = day.replicas[0].drain_info(&node).await.expect("drain info");
    let blocking: usize = info.blocking.values().map(Vec::len).sum();
    day.say(format!(
        "T+40m: operator drains {name}; its {blocking} students keep working, new students go elsewhere"
    ));
    day.timeline().await;
    if let Err(e) = day.replicas[0]
        .admin(&node, AdminAction::Disable { force: false }, "admin-minh")
        .await
    {
        day.say(format!("T+40m: disabling {name} now is refused: {e}"));
    }
    let leaving = day.workers.sessions(&node);
    for key in &leaving {
        day.replicas[0].release(key).await.expect("release");
    }
    day.advance(20);
    day.heartbeats(&[dead]).await;
    day.say(format!("T+60m: its {} students submitted", leaving.len()));
    let info = day.replicas[0].drain_info(&node).await.expect("drain info");
    day.say(format!(
        "T+60m: {name} reports 0 sessions and holds no dispatch: drainStatus = {:?}",
        info.drain_status
    ));
    day.replicas[0]
        .admin(&node, AdminAction::Disable { force: false }, "admin-minh")
        .await
        .expect("disable");
    day.say(format!("T+60m: {name} disabled for maintenance"));
    day.timeline().await;

    // Everyone else submits.
    day.advance(30);
    day.heartbeats(&[dead]).await;
    let mut released = 0;
    for key in students() {
        if day.replicas[released % 2]
            .release(&key)
            .await
            .expect("release")
            .is_some()
        {
            released += 1;
        }
    }
    day.heartbeats(&[dead]).await;
    day.say(format!(
        "T+90m: {released} more submissions released their desktops"
    ));
    let report = day.replicas[0].reconcile().await.expect("reconcile");
    day.say(format!(
        "T+90m: final reconcile: counter drift found: {}",
        report.drift.len()
    ));
    day.summary().await;

    println!(
        "\n{:<16} {:<10} {:>5} {:>11} {:>14}",
        "worker", "status", "slots", "peak in use", "sessions moved"
    );
    let mut moved: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for e in day.events.events() {
        if let EventKind::SessionMigrated { from, to, .. } = e.kind {
            moved.entry(from.to_string()).or_default().0 += 1;
            moved.entry(to.to_string()).or_default().1 += 1;
        }
    }
    for v in day.replicas[0]
        .list_workers(&Default::default())
        .await
        .expect("list")
    {
        let (out, inn) = moved.get(v.id().as_str()).copied().unwrap_or_default();
        let moves = match (out, inn) {
            (0, 0) => String::new(),
            (out, 0) => format!("{out} out"),
            (0, inn) => format!("{inn} in"),
            (out, inn) => format!("{out} out, {inn} in"),
        };
        println!(
            "{:<16} {:<10} {:>5} {:>11} {:>14}",
            v.id().as_str(),
            v.status.name(),
            v.max_sessions,
            day.peak.get(v.id()).copied().unwrap_or_default(),
            moves
        );
    }
}
