//! The students' check: every student who asked holds exactly one running
//! desktop or waits in the waiting room in order, as the control plane
//! and the agents both say.

use std::collections::{BTreeMap, HashMap};

use vdi_cluster_protocol::waiting_room::ExamQueueJson;

use super::{Answer, Check, Snapshot, StudentFigures};
use crate::gameday::students::{Crowd, Holding, Student, waiting_room_order};

/// The students' check on `snap`: failures (counted by kind, with a few
/// examples) and the figures.
pub(super) fn students_check(
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
    for (code, keys) in &snap.fleet.running {
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
