//! The students of the booked exam, one task each, behaving as the exam
//! application lets them: click "start" once at their time in the window
//! (some double-click: two requests at once through two replicas), work
//! while their desktop runs, reload (ask again) when it goes black or
//! freezes, wait in the waiting room asking for their place every second,
//! and — a share of them — submit during the day. Every answer is
//! recorded: placements (for the time until the cluster placed students
//! again after each fault), displacements and the time each displaced
//! student was back at a desktop, the positions seen while waiting, and
//! any answer the API should never give.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use vdi_cluster_protocol::waiting_room::ExamQueueJson;

mod asks;
mod order;

use self::asks::Told;
pub(crate) use self::order::waiting_room_order;
use super::monitor::{Desktop, Monitor};

/// Where the day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Students click, work, reload, wait and submit.
    Running,
    /// The faults are over: nobody submits any more; students still
    /// reload and wait until the cluster is settled.
    Settling,
    /// The checks are read: waiting students keep asking for their place
    /// (or they would leave the room), nobody else does anything.
    Hold,
    /// Every student stops, as they are.
    Stop,
}

/// How students behave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Habits {
    /// A working student looks at its desktop this often.
    pub(crate) check_every: Duration,
    /// A waiting student asks for its place this often.
    pub(crate) poll_every: Duration,
    /// A refused student (503) asks again after this.
    pub(crate) retry_pause: Duration,
    /// A desktop whose worker does not answer for this long is frozen.
    pub(crate) freeze: Duration,
}

/// One student's plan for the day.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) user: String,
    pub(crate) click_at: Instant,
    pub(crate) submit_at: Option<Instant>,
    pub(crate) double_click: bool,
}

/// What a student holds, as it believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Holding {
    /// Nothing yet (or it lost it and asks again).
    #[default]
    Nothing,
    /// A desktop on `worker`, since `since`.
    Seated { worker: String, since: Instant },
    /// A slot reserved for it, its desktop still starting (a promotion
    /// from the waiting room seen half-way, or a paced start): it asks
    /// again shortly.
    Placing,
    /// A place in the waiting room.
    Queued,
    /// It submitted: it holds nothing and asks for nothing.
    Submitted,
}

/// One stay in the waiting room: the earliest time the student can have
/// joined (the first request since it last knew it was not waiting, ms
/// since the epoch), when it was answered "queued", and the last position
/// seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stint {
    pub(crate) sent_ms: u64,
    pub(crate) answered_ms: u64,
    pub(crate) position: u32,
}

/// One student's state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Student {
    /// It sent at least one request.
    pub(crate) asked: bool,
    pub(crate) holding: Holding,
    /// The current stay in the waiting room.
    pub(crate) stint: Option<Stint>,
    /// Times a poll saw its position go up within one stay (never
    /// legitimate: nobody joins ahead of a waiting student).
    pub(crate) position_rises: u32,
    /// The dispatch id it last held.
    pub(crate) dispatch: Option<String>,
    /// Displaced by fault `.0` (its index; `None`: outside any fault) and
    /// not back at a desktop yet.
    pub(crate) displaced: Option<Option<usize>>,
    /// When its release was answered (ms since the epoch).
    pub(crate) submitted_ms: Option<u64>,
    /// What it believed it held when it submitted.
    pub(crate) submitted_while: Option<String>,
    /// When it sent the first request since it last knew for sure that it
    /// was not waiting (ms since the epoch): a request answered with an
    /// error may still have queued it, so its stay may begin there.
    pub(crate) asking_since_ms: Option<u64>,
}

/// Answers the students got.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answers {
    pub(crate) requests: u64,
    pub(crate) placed: u64,
    pub(crate) existing: u64,
    pub(crate) queued: u64,
    pub(crate) refused: u64,
    pub(crate) transport_errors: u64,
    /// Answers the API should never give (a 500, a 4xx to a valid request).
    pub(crate) unexpected: u64,
    pub(crate) first_unexpected: Vec<String>,
}

/// Double clicks: two requests at once for one student.
#[derive(Debug, Clone, Default)]
pub(crate) struct Doubles {
    pub(crate) students: u64,
    /// One request placed (or found) the student's desktop, the other was
    /// refused with 503.
    pub(crate) refused_while_held: u64,
    /// One was placed, the other queued.
    pub(crate) queued_while_held: u64,
    /// Both answered a desktop, with different dispatches.
    pub(crate) two_dispatches: u64,
}

/// What the students saw, for the report.
#[derive(Debug, Clone, Default)]
pub(crate) struct Log {
    /// When each new placement the students saw was made (the
    /// dispatch's activation, ms since the epoch).
    pub(crate) placements: Vec<u64>,
    /// Per fault: students displaced (their desktop went black or froze).
    pub(crate) displaced: Vec<u64>,
    /// Per fault: for each displaced student back at a running desktop,
    /// the time from the fault.
    pub(crate) back: Vec<Vec<Duration>>,
    /// Displacements outside any fault (before the first).
    pub(crate) displaced_without_fault: u64,
    pub(crate) answers: Answers,
    pub(crate) doubles: Doubles,
    pub(crate) audits: Audits,
}

/// The waiting room's order, audited every two seconds during the day.
#[derive(Debug, Clone, Default)]
pub(crate) struct Audits {
    /// Listings read.
    pub(crate) listings: u64,
    /// The most students one listing held.
    pub(crate) most_waiting: u64,
    /// Problems found (see `waiting_room_order`).
    pub(crate) problems: u64,
    pub(crate) first_problems: Vec<String>,
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The students and what they share: the replicas' doors, the desktops'
/// monitor, the faults injected so far, and the log.
#[derive(Debug)]
pub(crate) struct Crowd {
    pub(crate) exam: String,
    doors: Vec<String>,
    jwt: String,
    admin_jwt: String,
    client: reqwest::Client,
    index: std::collections::HashMap<String, usize>,
    monitor: Arc<Monitor>,
    pub(crate) plans: Vec<Plan>,
    pub(crate) states: Vec<Mutex<Student>>,
    pub(crate) log: Mutex<Log>,
    /// When each fault was injected, in order.
    faults: Mutex<Vec<Instant>>,
    phase: watch::Receiver<Phase>,
    habits: Habits,
}

impl Crowd {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        exam: String,
        doors: Vec<String>,
        (jwt, admin_jwt): (String, String),
        monitor: Arc<Monitor>,
        plans: Vec<Plan>,
        faults: usize,
        phase: watch::Receiver<Phase>,
        habits: Habits,
    ) -> anyhow::Result<Self> {
        let log = Log {
            displaced: vec![0; faults],
            back: vec![Vec::new(); faults],
            ..Log::default()
        };
        Ok(Self {
            exam,
            doors,
            jwt,
            admin_jwt,
            index: plans
                .iter()
                .enumerate()
                .map(|(i, p)| (p.user.clone(), i))
                .collect(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(20))
                .build()?,
            monitor,
            states: plans.iter().map(|_| Mutex::default()).collect(),
            plans,
            log: Mutex::new(log),
            faults: Mutex::default(),
            phase,
            habits,
        })
    }

    /// The timeline injected its next fault now.
    pub(crate) fn fault_injected(&self, at: Instant) {
        self.faults.lock().expect("faults lock").push(at);
    }

    /// Student `user`'s index.
    pub(crate) fn index_of(&self, user: &str) -> Option<usize> {
        self.index.get(user).copied()
    }

    /// Reads the waiting room's listing every two seconds (through each
    /// replica in turn) and checks its order against what the students
    /// were answered, until the students stop.
    pub(crate) async fn audit_waiting_room(self: Arc<Self>) {
        let mut door = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if self.phase() == Phase::Stop {
                return;
            }
            door += 1;
            // What the students were told, before the listing is read: a
            // stay that began after the read cannot be compared with it.
            let states = self.snapshot();
            let url = format!(
                "{}/api/vdi/exams/{}/queue",
                self.doors[door % self.doors.len()],
                self.exam
            );
            let Ok(r) = self
                .client
                .get(url)
                .bearer_auth(&self.admin_jwt)
                .send()
                .await
            else {
                continue;
            };
            let Ok(queue) = r.json::<ExamQueueJson>().await else {
                continue;
            };
            let problems = waiting_room_order(&queue.waiting, &self, &states);
            self.note(|l| {
                let a = &mut l.audits;
                a.listings += 1;
                a.most_waiting = a.most_waiting.max(queue.waiting.len() as u64);
                a.problems += problems.len() as u64;
                for (kind, who) in problems {
                    if a.first_problems.len() < 3 {
                        a.first_problems.push(format!("{kind}: {who}"));
                    }
                }
            });
        }
    }

    /// The fault under way at `at` (the last one injected before it).
    fn fault_at(&self, at: Instant) -> Option<(usize, Instant)> {
        let faults = self.faults.lock().expect("faults lock");
        faults
            .iter()
            .enumerate()
            .rev()
            .find(|(_, t)| **t <= at)
            .map(|(i, t)| (i, *t))
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    fn key(&self, i: usize) -> String {
        format!("{}/{}", self.exam, self.plans[i].user)
    }

    fn state(&self, i: usize) -> std::sync::MutexGuard<'_, Student> {
        self.states[i].lock().expect("student lock")
    }

    fn note(&self, f: impl FnOnce(&mut Log)) {
        f(&mut self.log.lock().expect("log lock"));
    }

    /// Student `i`'s day.
    pub(crate) async fn live(self: Arc<Self>, i: usize) {
        let plan = self.plans[i].clone();
        tokio::time::sleep_until(plan.click_at.into()).await;
        let mut door = i;
        let mut first = true;
        let mut reloads: u32 = 0;
        let key = self.key(i);
        loop {
            let phase = self.phase();
            if phase == Phase::Stop {
                return;
            }
            let submit_due =
                phase == Phase::Running && plan.submit_at.is_some_and(|at| Instant::now() >= at);
            let holding = self.state(i).holding.clone();
            if phase == Phase::Hold {
                if matches!(holding, Holding::Queued | Holding::Placing) {
                    tokio::time::sleep(self.habits.poll_every).await;
                    let told = self.get(i, door).await;
                    if matches!(told, Told::Failed) {
                        door += 1;
                    }
                    self.apply(i, &told);
                } else {
                    tokio::time::sleep(self.habits.check_every).await;
                }
                continue;
            }
            match holding {
                Holding::Submitted => return,
                Holding::Nothing => {
                    if submit_due && !first {
                        // Never got a desktop, and the exam is over for it.
                        if self.submit(i, door).await {
                            self.submitted(i);
                            continue;
                        }
                        door += 1;
                    } else {
                        self.click(i, &mut door, first && plan.double_click).await;
                        first = false;
                    }
                    if self.state(i).holding == Holding::Nothing {
                        tokio::time::sleep(self.habits.retry_pause).await;
                    }
                }
                Holding::Placing => {
                    tokio::time::sleep(self.habits.check_every / 2).await;
                    let told = self.get(i, door).await;
                    if matches!(told, Told::Failed) {
                        door += 1;
                    }
                    self.apply(i, &told);
                }
                Holding::Queued => {
                    if submit_due {
                        if self.submit(i, door).await {
                            self.submitted(i);
                            continue;
                        }
                        door += 1;
                    }
                    tokio::time::sleep(self.habits.poll_every).await;
                    let told = self.get(i, door).await;
                    if matches!(told, Told::Failed) {
                        door += 1;
                    }
                    self.apply(i, &told);
                }
                Holding::Seated { worker, since } => {
                    if submit_due {
                        if self.submit(i, door).await {
                            self.submitted(i);
                            return;
                        }
                        door += 1;
                        tokio::time::sleep(self.habits.retry_pause).await;
                        continue;
                    }
                    match self
                        .monitor
                        .desktop(&worker, &key, since, self.habits.freeze)
                    {
                        Desktop::Alive => {
                            reloads = 0;
                            let back = self.state(i).displaced.take();
                            if let Some(fault) = back {
                                self.back_at_desktop(fault);
                            }
                            tokio::time::sleep(self.habits.check_every).await;
                        }
                        Desktop::Pending => tokio::time::sleep(self.habits.check_every).await,
                        Desktop::Lost | Desktop::Frozen => {
                            self.displaced(i);
                            let before = self.state(i).dispatch.clone();
                            self.click(i, &mut door, false).await;
                            let moved = {
                                let st = self.state(i);
                                st.dispatch != before
                                    || matches!(st.holding, Holding::Queued | Holding::Placing)
                            };
                            if moved {
                                // A new desktop (or a place in the room):
                                // look at it as usual.
                                reloads = 0;
                                tokio::time::sleep(self.habits.check_every).await;
                                continue;
                            }
                            // The same black desktop again: a student
                            // reloads a few times, then waits longer.
                            reloads = reloads.saturating_add(1);
                            let pause = self
                                .habits
                                .check_every
                                .saturating_mul(1 << reloads.min(4))
                                .min(Duration::from_secs(8));
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            }
        }
    }

    /// Student `i`'s release was answered: it holds nothing any more.
    fn submitted(&self, i: usize) {
        let mut st = self.state(i);
        st.submitted_while = Some(match &st.holding {
            Holding::Seated { worker, .. } => format!("at a desktop on {worker}"),
            Holding::Queued => "waiting".to_owned(),
            _ => "holding nothing".to_owned(),
        });
        st.holding = Holding::Submitted;
        st.stint = None;
        st.displaced = None;
        st.submitted_ms = Some(now_ms());
        st.asking_since_ms = None;
    }

    /// Student `i`'s desktop went black or froze: counted once per stay
    /// away from a running desktop, against the fault under way.
    fn displaced(&self, i: usize) {
        let mut st = self.state(i);
        if st.displaced.is_some() {
            return;
        }
        let fault = self.fault_at(Instant::now()).map(|(f, _)| f);
        st.displaced = Some(fault);
        drop(st);
        self.note(|l| match fault {
            Some(f) => l.displaced[f] += 1,
            None => l.displaced_without_fault += 1,
        });
    }

    fn back_at_desktop(&self, fault: Option<usize>) {
        let Some(f) = fault else { return };
        let at = self.faults.lock().expect("faults lock").get(f).copied();
        if let Some(at) = at {
            let after = at.elapsed();
            self.note(|l| l.back[f].push(after));
        }
    }

    /// Whether every student who asked is settled — submitted, waiting, or
    /// at a desktop its worker listed in a poll sent after `after` — and
    /// how many are not.
    pub(crate) fn unsettled(&self, after: Instant) -> usize {
        let mut unsettled = 0;
        for (i, st) in self.states.iter().enumerate() {
            let st = st.lock().expect("student lock").clone();
            if !st.asked {
                continue;
            }
            let ok = match &st.holding {
                Holding::Submitted | Holding::Queued => true,
                Holding::Nothing | Holding::Placing => false,
                Holding::Seated { worker, .. } => self
                    .monitor
                    .sessions_since(worker, after)
                    .is_some_and(|keys| keys.contains(&self.key(i))),
            };
            if !ok {
                unsettled += 1;
            }
        }
        unsettled
    }

    /// `examId/userId` → the worker each seated student believes it is on.
    pub(crate) fn seated(&self) -> std::collections::HashMap<String, String> {
        self.states
            .iter()
            .enumerate()
            .filter_map(|(i, st)| match &st.lock().expect("student lock").holding {
                Holding::Seated { worker, .. } => Some((self.key(i), worker.clone())),
                _ => None,
            })
            .collect()
    }

    /// A copy of every student's state.
    pub(crate) fn snapshot(&self) -> Vec<Student> {
        self.states
            .iter()
            .map(|s| s.lock().expect("student lock").clone())
            .collect()
    }
}
