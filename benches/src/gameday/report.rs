//! What a game day found, as a table for people and JSON for tools.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::GameDayConfig;
use super::checks::{Check, StudentFigures, WebhookFigures};
use super::timeline::Injected;
use crate::table::{Table, thousands};

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
