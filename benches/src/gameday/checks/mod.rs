//! The checks at the end of a game day, on a snapshot of everything: the
//! control plane's answer for every student who asked, its records per
//! worker, its waiting room, every agent's own list of what it runs, the
//! store's recount, and the outbox against what the webhook receiver got.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use vdi_cluster_core::Store;
use vdi_cluster_core::outbox::{DeliveryState, webhook_type};
use vdi_cluster_protocol::waiting_room::{ExamQueueJson, SessionAnswerJson, WaitingStudentJson};

use super::cluster::Cluster;
use super::monitor::Monitor;
use super::receiver::Receiver;
use super::students::{Crowd, Holding, Student};
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
enum Answer {
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
    /// Agent code → what it runs.
    running: BTreeMap<String, HashSet<String>>,
    /// Worker code → the control plane's records on it.
    records: BTreeMap<String, HashSet<String>>,
    /// Worker code → (used slots, max slots) as the control plane counts.
    used: BTreeMap<String, (u32, u32)>,
}

async fn snapshot(cluster: &Cluster, crowd: &Crowd, asked: &[usize]) -> anyhow::Result<Snapshot> {
    let queue: ExamQueueJson = cluster
        .admin_get(&format!("/api/vdi/exams/{}/queue", crowd.exam))
        .await?;
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
        running,
        records,
        used,
    })
}

async fn answer_for(cluster: &Cluster, exam: &str, user: &str) -> Answer {
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
                Err(e) => last = e.to_string(),
            },
            Ok(r) => last = r.status().to_string(),
            Err(e) => last = e.to_string(),
        }
    }
    Answer::Error(last)
}

/// The students' check on `snap`: failures (counted by kind, with a few
/// examples) and the figures.
fn students_check(
    snap: &Snapshot,
    crowd: &Crowd,
    asked: &[usize],
    states: &[Student],
) -> (Check, StudentFigures) {
    let mut figures = StudentFigures::default();
    let mut failures: BTreeMap<&'static str, (u64, Vec<String>)> = BTreeMap::new();
    let mut fail = |kind: &'static str, who: &str| {
        let entry = failures.entry(kind).or_default();
        entry.0 += 1;
        if entry.1.len() < 2 {
            entry.1.push(who.to_owned());
        }
    };
    let mut where_runs: HashMap<&str, Vec<&str>> = HashMap::new();
    for (code, keys) in &snap.running {
        for k in keys {
            where_runs
                .entry(k.as_str())
                .or_default()
                .push(code.as_str());
        }
    }
    let mut queued_users: HashMap<String, u32> = HashMap::new();
    for (n, &i) in asked.iter().enumerate() {
        let user = &crowd.plans[i].user;
        let key = format!("{}/{user}", crowd.exam);
        let runs = where_runs.get(key.as_str()).cloned().unwrap_or_default();
        let submitted = states[i].holding == Holding::Submitted;
        if submitted {
            figures.submitted += 1;
        }
        match &snap.answers[n] {
            Answer::Seated {
                worker,
                state,
                reserved_at,
            } => {
                if submitted {
                    let after = states[i].submitted_ms.map_or(String::new(), |at| {
                        format!(
                            " (submitted {}; its dispatch on {worker} reserved {:+} ms after the release was answered)",
                            states[i].submitted_while.as_deref().unwrap_or("?"),
                            *reserved_at as i64 - at as i64
                        )
                    });
                    fail(
                        "submitted, still holds a desktop",
                        &format!("{user}{after}"),
                    );
                } else if runs.is_empty() {
                    fail("desktop runs nowhere", user);
                } else if runs.len() > 1 {
                    fail("more than one desktop", user);
                } else if runs[0] != worker {
                    fail("desktop runs on another worker than recorded", user);
                } else if state != "active" {
                    fail("desktop not active", user);
                } else {
                    figures.seated += 1;
                }
            }
            Answer::Queued { position } => {
                if !runs.is_empty() {
                    fail("waiting, yet a desktop runs", user);
                } else {
                    figures.waiting += 1;
                }
                queued_users.insert(user.clone(), *position);
            }
            Answer::None => {
                if !runs.is_empty() {
                    fail("no record, yet a desktop runs", user);
                } else if !submitted {
                    fail("neither a desktop nor a place in the waiting room", user);
                }
            }
            Answer::Error(e) => fail("no answer", &format!("{user}: {e}")),
        }
    }
    figures.asked = asked.len() as u64;
    // The waiting room: in order (see `waiting_room_order`), and — when it
    // did not move while the students were asked — each waiting student
    // told the place it lists.
    let listed = &snap.queue.waiting;
    for problem in waiting_room_order(listed, crowd, states) {
        fail(problem.0, &problem.1);
    }
    let users = |q: &ExamQueueJson| {
        q.waiting
            .iter()
            .map(|w| w.user_id.clone())
            .collect::<Vec<_>>()
    };
    if users(&snap.queue) == users(&snap.queue_after) {
        let listed_users: HashMap<&str, u32> = listed
            .iter()
            .map(|w| (w.user_id.as_str(), w.position))
            .collect();
        for (user, position) in &queued_users {
            if listed_users.get(user.as_str()) != Some(position) {
                fail("told a place the waiting room does not list", user);
            }
        }
        for w in listed {
            if !queued_users.contains_key(&w.user_id) {
                fail("listed in the waiting room, told otherwise", &w.user_id);
            }
        }
    } else {
        fail(
            "the waiting room moved while the students were asked",
            &format!(
                "{} then {} waiting",
                listed.len(),
                snap.queue_after.waiting.len()
            ),
        );
    }
    let rises: u32 = states.iter().map(|s| s.position_rises).sum();
    if rises > 0 {
        for (i, s) in states.iter().enumerate() {
            if s.position_rises > 0 {
                fail("saw its position go up", &crowd.plans[i].user);
            }
        }
    }
    let passed = failures.is_empty();
    let mut detail = format!(
        "{} asked: {} at one running desktop, {} waiting in order, {} submitted",
        figures.asked, figures.seated, figures.waiting, figures.submitted
    );
    for (kind, (n, who)) in &failures {
        detail.push_str(&format!("; {n} {kind} (e.g. {})", who.join(", ")));
    }
    (
        Check {
            name: "every student: one desktop, or waiting in order",
            passed,
            detail,
        },
        figures,
    )
}

/// What is wrong with the order of a waiting room's listing: positions
/// not 1..n, a student listed twice, or one overtaken — a student who was
/// answered "queued" before another one sent the request that queued it
/// must be ahead of it (invariant E, as clients can see it). Only students
/// who believe they wait, with the stay that queued them, are compared.
pub(crate) fn waiting_room_order(
    listed: &[WaitingStudentJson],
    crowd: &Crowd,
    states: &[Student],
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if listed
        .iter()
        .enumerate()
        .any(|(k, w)| w.position as usize != k + 1)
    {
        problems.push(("waiting room positions not 1..n", crowd.exam.clone()));
    }
    let mut seen = HashSet::new();
    for w in listed {
        if !seen.insert(w.user_id.as_str()) {
            problems.push(("listed twice in the waiting room", w.user_id.clone()));
        }
    }
    // The student behind answered "queued" first: (answered at, who).
    let mut earliest_behind: Option<(u64, &WaitingStudentJson)> = None;
    for w in listed.iter().rev() {
        let stint = crowd
            .index_of(&w.user_id)
            .map(|i| &states[i])
            .filter(|s| s.holding == Holding::Queued)
            .and_then(|s| s.stint);
        let Some(stint) = stint else { continue };
        if let Some((answered, behind)) = earliest_behind
            && answered < stint.sent_ms
        {
            problems.push((
                "overtaken in the waiting room",
                format!(
                    "{} (#{}) was answered \"queued\" {} ms before {} (#{}) asked; \
                     the room says they joined at {} and {}",
                    behind.user_id,
                    behind.position,
                    stint.sent_ms - answered,
                    w.user_id,
                    w.position,
                    behind.enqueued_at,
                    w.enqueued_at
                ),
            ));
        }
        if earliest_behind.is_none_or(|(a, _)| stint.answered_ms < a) {
            earliest_behind = Some((stint.answered_ms, w));
        }
    }
    problems
}

/// No slot held by nobody: per worker, what its agent runs equals the
/// control plane's records on it, and the slots counted used equal what
/// runs.
fn slots_check(snap: &Snapshot) -> Check {
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
                (vec![students, slots_check(snap)], figures)
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
