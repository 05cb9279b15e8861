//! The simulated day: the clock, the workers' heartbeats, the leader's
//! tick and the narration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::capacity::CapacitySpec;
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::health::{HeartbeatStamp, ResourceUsage};
use vdi_cluster_core::service::HealthMonitor;
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{
    Clock, ClusterService, Heartbeat, ManualClock, Timestamp, WorkerDescription, WorkerId,
};

/// Everything the story needs.
pub(crate) struct Day {
    pub(crate) clock: ManualClock,
    pub(crate) workers: SimulatedWorkers,
    pub(crate) events: RecordingSink,
    pub(crate) replicas: [Arc<ClusterService>; 2],
    pub(crate) fleet: Vec<(WorkerId, CapacitySpec)>,
    /// Workers that no longer heartbeat.
    pub(crate) dead: Vec<WorkerId>,
    /// Students placed by the surges.
    pub(crate) placed: u32,
    /// Most sessions each worker ran at once.
    pub(crate) peak: BTreeMap<WorkerId, usize>,
    seq: u64,
    shown: usize,
    monitor: HealthMonitor,
}

/// `HH:MM:SS` of `t`.
pub(crate) fn clock_text(t: Timestamp) -> String {
    let secs = t.as_millis() / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

impl Day {
    /// The day at `clock`'s time, before any worker has started.
    pub(crate) fn new(
        clock: ManualClock,
        workers: SimulatedWorkers,
        events: RecordingSink,
        replicas: [Arc<ClusterService>; 2],
        fleet: Vec<(WorkerId, CapacitySpec)>,
    ) -> Self {
        Self {
            clock,
            workers,
            events,
            replicas,
            fleet,
            dead: Vec::new(),
            placed: 0,
            peak: BTreeMap::new(),
            seq: 0,
            shown: 0,
            monitor: HealthMonitor::default(),
        }
    }

    /// The first replica (the leader).
    pub(crate) fn leader(&self) -> &ClusterService {
        &self.replicas[0]
    }

    /// Prints `text` at the current time.
    pub(crate) fn say(&self, text: impl AsRef<str>) {
        println!("{}  {}", clock_text(self.clock.now()), text.as_ref());
    }

    /// The next minute, the leader's tick first and the workers'
    /// heartbeats after it: what the workers report comes in step by step.
    pub(crate) async fn next_minute_step_by_step(&mut self) {
        self.clock.advance(Duration::from_secs(60));
        self.leader_tick().await;
        self.readiness().await;
        self.heartbeats_of(|i| i % 2 == 0).await;
        self.say("half of the workers have reported their prewarm pools:");
        self.readiness().await;
        self.heartbeats().await;
        self.say("all of them have:");
        self.readiness().await;
        self.leader_tick().await;
    }

    /// Every live worker heartbeats.
    pub(crate) async fn heartbeats(&mut self) {
        self.heartbeats_of(|_| true).await;
    }

    /// Every live worker `which` picks (by its place in the fleet) reports
    /// what it really runs: its sessions and its prewarm pool.
    pub(crate) async fn heartbeats_of(&mut self, which: impl Fn(usize) -> bool) {
        self.seq += 1;
        for (i, (id, capacity)) in self.fleet.iter().enumerate() {
            if !which(i) || self.dead.contains(id) {
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
                prewarm_pool: self.workers.pool_report(id),
                max_concurrent_starts: None,
                resources: ResourceUsage::default(),
                host: Default::default(),
            };
            self.replicas[0]
                .fleet()
                .heartbeat(hb)
                .await
                .expect("heartbeat");
        }
    }

    /// `minutes` go by: heartbeats every 20 s, the leader's tick every
    /// minute.
    pub(crate) async fn run_for(&mut self, minutes: u64) {
        for _ in 0..minutes {
            for _ in 0..3 {
                self.clock.advance(Duration::from_secs(20));
                self.heartbeats().await;
            }
            self.leader_tick().await;
        }
    }

    /// The leader replica's background tick for exams: risks, timed
    /// prewarms due now, keeping the targets, the waiting rooms, releasing
    /// ended exams' machines.
    pub(crate) async fn leader_tick(&mut self) {
        let svc = Arc::clone(&self.replicas[0]);
        svc.exams().evaluate_exam_risks().await.expect("risks");
        for (exam, r) in svc.exams().start_due_prewarms().await.expect("prewarm") {
            self.say(format!(
                "leader: timed prewarm of {exam}: {} machines planned on {} workers, {} started",
                r.planned,
                r.shares.len(),
                r.started
            ));
        }
        for (exam, r) in svc
            .exams()
            .keep_prewarm_targets(None)
            .await
            .expect("targets")
        {
            self.say(format!(
                "leader: {exam} short of its target: {} more started",
                r.started
            ));
        }
        let queues = svc.exams().tend_queues().await.expect("queues");
        if queues.placed + queues.abandoned > 0 {
            self.say(format!(
                "leader: waiting rooms: {} placed, {} left for not polling",
                queues.placed, queues.abandoned
            ));
        }
        let expiry = svc.exams().expire_sessions(None).await.expect("expiry");
        if expiry.warned + expiry.expired > 0 {
            self.say(format!(
                "leader: {} student(s) warned their end is near, {} desktop(s) released at their own end",
                expiry.warned, expiry.expired
            ));
        }
        let released = svc.exams().release_ended_prewarms().await.expect("release");
        if released > 0 {
            self.say(format!(
                "leader: released {released} unclaimed prewarmed machines"
            ));
        }
        self.timeline().await;
    }

    /// Prints each booked exam's readiness as the workers report it.
    pub(crate) async fn readiness(&self) {
        for s in self
            .leader()
            .exams()
            .exam_calendar(None, None)
            .await
            .expect("cal")
        {
            let r = &s.prewarm;
            if s.exam.prewarm_started_at.is_none() || s.exam.ends_at <= self.clock.now() {
                continue;
            }
            let holders = r.workers.iter().filter(|(_, w)| w.live).count();
            self.say(format!(
                "  {:<8} readiness {:>3} %: {} ready, {} starting of {} (on {holders} workers){}",
                s.exam.id.as_str(),
                r.readiness_percent,
                r.live.ready,
                r.live.starting,
                r.target,
                match &s.at_risk {
                    Some(short) => format!(", AT RISK: {} short", short.missing),
                    None => String::new(),
                }
            ));
        }
    }

    /// Prints availability changes (what the leader's health monitor
    /// emits) and every new event.
    pub(crate) async fn timeline(&mut self) {
        let views = self.replicas[0]
            .fleet()
            .worker_views()
            .await
            .expect("views");
        for kind in self.monitor.observe(&views, self.clock.now()) {
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
            if let Some(text) = describe(&e.kind) {
                println!("{}    event: {text}", clock_text(e.at));
            }
        }
        self.shown = events.len();
    }

    /// Prints the fleet's summary.
    pub(crate) async fn summary(&self) {
        let s = self.leader().operations().summary().await.expect("summary");
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

fn describe(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::WorkerAvailability {
            worker, from, to, ..
        } => format!("{worker} {from} -> {to}"),
        EventKind::WorkerPolicy {
            worker,
            from,
            to,
            actor,
        } => format!("{worker} policy {from} -> {to} (by {actor})"),
        EventKind::SessionMigrated { session, from, to } => {
            format!("{session} moved {from} -> {to}")
        }
        EventKind::MigrationFailed {
            session, reason, ..
        } => format!("{session} NOT moved: {reason}"),
        EventKind::MigrationSuspended { reason } => format!("migration held back: {reason}"),
        EventKind::SessionsOrphaned { worker, count } => {
            format!("{count} session(s) orphaned on {worker}")
        }
        EventKind::ExamAtRisk {
            exam,
            shortfall,
            peak_at,
        } => format!(
            "{exam} AT RISK: {shortfall} students short at {}",
            clock_text(*peak_at)
        ),
        EventKind::ExamFitsAgain { exam } => format!("{exam} fits again"),
        EventKind::ExamPrewarmReady {
            exam,
            ready,
            target,
        } => format!("{exam} prewarm ready: {ready}/{target} machines"),
        EventKind::ExamPrewarmBehind {
            exam,
            ready,
            target,
        } => format!("{exam} started with its prewarm behind: {ready}/{target}"),
        _ => return None,
    })
}
