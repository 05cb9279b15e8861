//! The checks at the end of a game day, on a snapshot of everything: the
//! control plane's answer for every student who asked, its records per
//! worker, its waiting room, every agent's own list of what it runs, the
//! store's recount, and the outbox against what the webhook receiver got.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use vdi_cluster_core::Store;
use vdi_cluster_core::outbox::{DeliveryState, webhook_type};
use vdi_cluster_protocol::session_answers::SessionAnswerJson;
use vdi_cluster_protocol::waiting_room::ExamQueueJson;

mod students;

use self::students::students_check;
use super::cluster::Cluster;
use super::monitor::Monitor;
use super::receiver::Receiver;
use super::students::Crowd;
use crate::audit::audit;

/// One check: its name, whether it passed, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is checked.
    pub name: &'static str,
    /// Whether it held.
    pub passed: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

/// What the control plane answered for one student.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Seated {
        worker: String,
        state: String,
        reserved_at: u64,
    },
    Queued {
        position: u32,
    },
    None,
    Error(String),
}

/// The students' figures, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StudentFigures {
    /// Students who sent at least one request.
    pub asked: u64,
    /// Holding exactly one running desktop.
    pub seated: u64,
    /// In the waiting room.
    pub waiting: u64,
    /// Submitted during the day.
    pub submitted: u64,
}

/// The webhooks' figures, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookFigures {
    /// Deliveries in the outbox for the receiver's endpoint.
    pub produced: u64,
    /// Of which the receiver got (by `webhook-id`).
    pub received: u64,
    /// Arrivals beyond the first of an id (retries; receivers de-duplicate).
    pub repeats: u64,
    /// Per webhook type: (produced, received).
    pub by_type: BTreeMap<String, (u64, u64)>,
}

/// A snapshot of what the students hold.
struct Snapshot {
    answers: Vec<Answer>,
    /// The waiting room, read before and after the students' answers.
    queue: ExamQueueJson,
    queue_after: ExamQueueJson,
    /// What runs and what is recorded.
    fleet: FleetView,
}

/// What every agent runs against the control plane's records and counts,
/// as `exam/user` keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct FleetView {
    /// Agent code → what it runs.
    pub(crate) running: BTreeMap<String, HashSet<String>>,
    /// Worker code → the control plane's records on it.
    pub(crate) records: BTreeMap<String, HashSet<String>>,
    /// Worker code → (used slots, max slots) as the control plane counts.
    pub(crate) used: BTreeMap<String, (u32, u32)>,
}

/// Reads every agent's own list, then the control plane's records and
/// counts of every worker.
pub(crate) async fn fleet_view(cluster: &Cluster) -> anyhow::Result<FleetView> {
    let mut running = BTreeMap::new();
    for (i, agent) in cluster.agents.iter().enumerate() {
        let status = cluster.agent_status(i).await?;
        running.insert(
            agent.code.clone(),
            status
                .sessions
                .iter()
                .map(|s| format!("{}/{}", s.exam_id, s.user_id))
                .collect::<HashSet<_>>(),
        );
    }
    let workers = cluster.workers().await?;
    let mut records = BTreeMap::new();
    let mut used = BTreeMap::new();
    for w in &workers.workers {
        let sessions = cluster.worker_sessions(&w.code).await?;
        records.insert(
            w.code.clone(),
            sessions
                .sessions
                .iter()
                .map(|s| format!("{}/{}", s.exam_id, s.user_id))
                .collect::<HashSet<_>>(),
        );
        used.insert(w.code.clone(), (w.used_sessions, w.max_sessions));
    }
    Ok(FleetView {
        running,
        records,
        used,
    })
}

async fn snapshot(cluster: &Cluster, crowd: &Crowd, asked: &[usize]) -> anyhow::Result<Snapshot> {
    let queue: ExamQueueJson = cluster
        .admin_get(&format!("/api/vdi/exams/{}/queue", crowd.exam))
        .await?;
    let fleet = fleet_view(cluster).await?;
    let answers = futures::stream::iter(asked.iter().map(|&i| {
        let user = crowd.plans[i].user.clone();
        async move { answer_for(cluster, &crowd.exam, &user).await }
    }))
    .buffered(32)
    .collect::<Vec<_>>()
    .await;
    let queue_after: ExamQueueJson = cluster
        .admin_get(&format!("/api/vdi/exams/{}/queue", crowd.exam))
        .await?;
    Ok(Snapshot {
        answers,
        queue,
        queue_after,
        fleet,
    })
}

/// What the control plane answers for `user`, through the first replica
/// that answers.
pub(crate) async fn answer_for(cluster: &Cluster, exam: &str, user: &str) -> Answer {
    let mut last = String::new();
    for door in 0..cluster.replicas.len() {
        let sent = cluster
            .client
            .get(format!(
                "{}/api/vdi/sessions/{exam}/{user}",
                cluster.base(door)
            ))
            .bearer_auth(&cluster.service_jwt)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 404 => return Answer::None,
            Ok(r) if r.status() == 200 => match r.json::<SessionAnswerJson>().await {
                Ok(SessionAnswerJson::Session(s)) => {
                    return Answer::Seated {
                        worker: s.worker_code,
                        state: s.state,
                        reserved_at: s.reserved_at,
                    };
                }
                Ok(SessionAnswerJson::Queued(q)) => {
                    return Answer::Queued {
                        position: q.position,
                    };
                }
                // A paced start: the seat is reserved, the desktop coming.
                Ok(SessionAnswerJson::Starting(st)) => {
                    return Answer::Seated {
                        worker: st.worker,
                        state: "reserved".to_owned(),
                        reserved_at: st.reserved_at,
                    };
                }
                Err(e) => last = e.to_string(),
            },
            Ok(r) => last = r.status().to_string(),
            Err(e) => last = e.to_string(),
        }
    }
    Answer::Error(last)
}

/// No slot held by nobody: per worker, what its agent runs equals the
/// control plane's records on it, and the slots counted used equal what
/// runs.
pub(crate) fn slots_check(snap: &FleetView) -> Check {
    let (mut unrecorded, mut ghost, mut counted_over, mut counted_under) = (0u64, 0u64, 0u64, 0u64);
    let mut workers = Vec::new();
    for (code, running) in &snap.running {
        let empty = HashSet::new();
        let records = snap.records.get(code).unwrap_or(&empty);
        let u = running.difference(records).count() as u64;
        let g = records.difference(running).count() as u64;
        let (used, _) = snap.used.get(code).copied().unwrap_or((0, 0));
        let used = u64::from(used);
        let runs = running.len() as u64;
        unrecorded += u;
        ghost += g;
        counted_over += used.saturating_sub(runs);
        counted_under += runs.saturating_sub(used);
        if u + g > 0 || used != runs {
            workers.push(format!(
                "{code}: runs {runs}, {} records, {used} counted",
                records.len()
            ));
        }
    }
    let passed = unrecorded + ghost + counted_over + counted_under == 0;
    let total: usize = snap.running.values().map(HashSet::len).sum();
    let mut detail = format!(
        "{} workers, {total} sessions running; {unrecorded} running without a record, \
         {ghost} records of nothing running, {counted_over} slots counted used beyond what runs, \
         {counted_under} running uncounted",
        snap.running.len()
    );
    if !workers.is_empty() {
        workers.truncate(4);
        detail.push_str(&format!(" ({})", workers.join("; ")));
    }
    Check {
        name: "no slot held by nobody (each worker: its sessions = the records)",
        passed,
        detail,
    }
}

/// Takes snapshots until the students' and slots' checks pass or
/// `bound` is over (a snapshot may catch the cluster in a step), and
/// answers the last.
pub(crate) async fn holdings(
    cluster: &Cluster,
    crowd: &Crowd,
    bound: Duration,
) -> (Vec<Check>, StudentFigures) {
    let asked: Vec<usize> = crowd
        .snapshot()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.asked)
        .map(|(i, _)| i)
        .collect();
    let deadline = Instant::now() + bound;
    loop {
        // What the students were told, before anything is read.
        let states = crowd.snapshot();
        let result = snapshot(cluster, crowd, &asked).await;
        let (checks, figures) = match &result {
            Ok(snap) => {
                let (students, figures) = students_check(snap, crowd, &asked, &states);
                (vec![students, slots_check(&snap.fleet)], figures)
            }
            Err(e) => (
                vec![Check {
                    name: "every student: one desktop, or waiting in order",
                    passed: false,
                    detail: format!("could not read the cluster: {e:#}"),
                }],
                StudentFigures::default(),
            ),
        };
        if checks.iter().all(|c| c.passed) || Instant::now() > deadline {
            return (checks, figures);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// 0 over-allocation: no poll of any agent saw it run more than its
/// slots, and the store's recount finds no worker with more records than
/// slots, nor a counter that differs from its records.
pub(crate) async fn over_allocation(monitor: &Monitor, store: &dyn Store) -> Check {
    let (over, most) = monitor.most_over();
    let slots: Vec<u32> = monitor.codes().map(|c| monitor.slots(c)).collect();
    match audit(store).await {
        Ok(a) => Check {
            name: "0 over-allocation",
            passed: over == 0 && a.over_allocations == 0 && a.counter_drift == 0,
            detail: format!(
                "agents polled every 0.3 s: {over} sessions beyond slots at most (the fullest ran {most} of {} slots); \
                 store recount: {} records, {} beyond slots, {} counters drifted",
                slots.iter().max().copied().unwrap_or(0),
                a.dispatches,
                a.over_allocations,
                a.counter_drift
            ),
        },
        Err(e) => Check {
            name: "0 over-allocation",
            passed: false,
            detail: format!("store recount failed: {e}"),
        },
    }
}

/// Every webhook event produced was delivered: waits (up to `bound`) until
/// the outbox has nothing pending or leased for the receiver's endpoint,
/// then compares its deliveries with what the receiver got, by id.
pub(crate) async fn webhooks(
    store: &dyn Store,
    endpoint: &str,
    receiver: &Receiver,
    bound: Duration,
) -> (Check, WebhookFigures) {
    let name = "every webhook event produced was delivered (by webhook-id)";
    let deadline = Instant::now() + bound;
    let deliveries = loop {
        match store.deliveries(endpoint, 10_000_000).await {
            Ok(d) => {
                let open = d
                    .iter()
                    .filter(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Leased))
                    .count();
                let arrivals = receiver.arrivals();
                let all_in = d.iter().all(|d| arrivals.contains_key(&d.entry.id));
                if (open == 0 && all_in) || Instant::now() > deadline {
                    break d;
                }
            }
            Err(e) if Instant::now() > deadline => {
                return (
                    Check {
                        name,
                        passed: false,
                        detail: format!("could not read the outbox: {e}"),
                    },
                    WebhookFigures::default(),
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let arrivals = receiver.arrivals();
    let mut figures = WebhookFigures::default();
    let (mut missing, mut failed, mut open) = (Vec::new(), 0u64, 0u64);
    for d in &deliveries {
        let kind = webhook_type(&d.entry.event.kind)
            .unwrap_or("other")
            .to_owned();
        let got = arrivals.contains_key(&d.entry.id);
        let row = figures.by_type.entry(kind.clone()).or_default();
        row.0 += 1;
        figures.produced += 1;
        if got {
            row.1 += 1;
            figures.received += 1;
        } else {
            missing.push(format!("{} ({kind})", d.entry.id));
        }
        match d.state {
            DeliveryState::Failed => failed += 1,
            DeliveryState::Pending | DeliveryState::Leased => open += 1,
            DeliveryState::Delivered => {}
        }
    }
    let produced_ids: HashSet<&str> = deliveries.iter().map(|d| d.entry.id.as_str()).collect();
    let strangers = arrivals
        .keys()
        .filter(|id| !produced_ids.contains(id.as_str()))
        .count();
    let unverified = arrivals.values().filter(|a| !a.verified).count();
    figures.repeats = arrivals
        .values()
        .map(|a| u64::from(a.times.saturating_sub(1)))
        .sum();
    let passed = missing.is_empty() && failed == 0 && open == 0 && unverified == 0;
    let mut detail = format!(
        "{} produced, {} received; {} missing, {failed} given up, {open} still pending, \
         {unverified} with a bad signature, {strangers} received that the outbox does not hold, \
         {} repeated arrivals",
        figures.produced,
        figures.received,
        missing.len(),
        figures.repeats
    );
    if !missing.is_empty() {
        missing.truncate(3);
        detail.push_str(&format!(" (e.g. {})", missing.join(", ")));
    }
    let now = super::students::now_ms();
    let open_ones: Vec<_> = deliveries
        .iter()
        .filter(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Leased))
        .collect();
    if !open_ones.is_empty() {
        let attempts = open_ones
            .iter()
            .map(|d| d.attempts.len())
            .max()
            .unwrap_or(0);
        let due = open_ones
            .iter()
            .map(|d| d.due_at.as_millis().saturating_sub(now))
            .max()
            .unwrap_or(0);
        let last_error = open_ones
            .iter()
            .filter_map(|d| d.attempts.last())
            .find_map(|a| a.error.clone().or(a.status.map(|s| format!("status {s}"))))
            .unwrap_or_else(|| "no attempt yet".into());
        detail.push_str(&format!(
            "; the open ones: up to {attempts} attempts, the last due in {:.0} s, last error: {last_error}",
            due as f64 / 1000.0
        ));
    }
    (
        Check {
            name,
            passed,
            detail,
        },
        figures,
    )
}
