//! What a failover run found, as tables for people and JSON for tools.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Engine, FailoverConfig};
use crate::gameday::checks::Check;
use crate::table::{Table, thousands};

/// Where the students answered are after the failover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// At the desktop (worker) they were answered with.
    pub same: u64,
    /// At a desktop on another worker: placed again.
    pub re_placed: u64,
    /// At no desktop (a lost write nobody repaired).
    pub nothing: u64,
    /// A few of those.
    pub examples: Vec<String>,
    /// How long the control plane was read until nobody held nothing (or
    /// the bound), ms.
    pub read_for_ms: u64,
}

/// What one run found.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    /// The engine that failed over.
    pub engine: Engine,
    /// With synchronous replication.
    pub sync: bool,
    /// The deployment, in words.
    pub store_detail: String,
    /// The configuration.
    pub config: FailoverConfig,
    /// When the primary was killed, from the first click, ms.
    pub kill_at_ms: u64,
    /// What the deployment did after the kill.
    pub failover_note: String,
    /// Every failed click, ms from the kill (negative: before it).
    pub failed: Vec<i64>,
    /// Failed clicks before the kill.
    pub failed_before_kill: u64,
    /// Students answered with a desktop (200/201).
    pub answered: u64,
    /// The last of those answers, ms after the kill.
    pub last_answer_ms: Option<u64>,
    /// From the kill until every student had its answer (or gave up), ms.
    pub surge_over_ms: u64,
    /// The students' requests and how they were answered.
    pub requests: Value,
    /// `host:port` of the primary before, and of the promoted one.
    pub first_primary: String,
    /// The promoted one.
    pub promoted: String,
    /// What each replica's `/readyz` names after the failover.
    pub replicas_named: Vec<String>,
    /// Replicas whose process had exited (none should).
    pub restarted: Vec<String>,
    /// Where the students answered are.
    pub holdings: Holdings,
    /// Sessions and reservations the heartbeats adopted (lost writes
    /// repaired), summed over the replicas' metrics.
    pub adopted_by_heartbeats: (u64, u64),
    /// The reconcile pass's report.
    pub pass: Value,
    /// No slot held by nobody after the pass; 0 over-allocation.
    pub checks: Vec<Check>,
    /// The processes' logs, kept when a check failed.
    pub logs: Option<PathBuf>,
}

impl FailoverReport {
    /// Failed clicks.
    pub fn failed_clicks(&self) -> u64 {
        self.failed.len() as u64
    }

    /// From the first failed click to the last, ms (0 when none failed).
    pub fn window_ms(&self) -> u64 {
        match (self.failed.iter().min(), self.failed.iter().max()) {
            (Some(a), Some(b)) => (b - a) as u64,
            _ => 0,
        }
    }

    /// The first and the last failed click, ms after the kill.
    pub fn failed_span(&self) -> Option<(i64, i64)> {
        Some((*self.failed.iter().min()?, *self.failed.iter().max()?))
    }

    /// Lost writes repaired: records the heartbeats adopted.
    pub fn repaired(&self) -> u64 {
        self.adopted_by_heartbeats.0 + self.adopted_by_heartbeats.1
    }

    /// Every figure that must hold did.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The names of what did not hold.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.to_owned())
            .collect();
        if self.answered < self.config.students as u64 {
            out.push(format!(
                "{} of {} students answered",
                self.answered, self.config.students
            ));
        }
        if self.holdings.nothing > 0 {
            out.push(format!(
                "{} students answered hold no desktop (e.g. {})",
                self.holdings.nothing,
                self.holdings.examples.join(", ")
            ));
        }
        if !self.restarted.is_empty() {
            out.push(format!("serve exited: {}", self.restarted.join("; ")));
        }
        if self.replicas_named.iter().any(|p| *p != self.promoted) {
            out.push(format!(
                "the replicas name {:?}, not {}",
                self.replicas_named, self.promoted
            ));
        }
        if self.requests["unexpected"].as_u64().unwrap_or(0) > 0 {
            out.push(format!(
                "answers the API should never give: {}",
                self.requests["firstUnexpected"]
            ));
        }
        out
    }

    /// `redis` / `redis --sync` / `postgres` / `postgres --sync`.
    pub fn label(&self) -> String {
        format!(
            "{}{}",
            self.engine.name(),
            if self.sync { " --sync" } else { "" }
        )
    }

    /// One line on what ran.
    pub fn title(&self) -> String {
        let c = &self.config;
        format!(
            "store failover on {} — {} replicas, {} agents × {} slots, {} students clicking within {} s, \
             the primary SIGKILLed at {:.1} s",
            self.label(),
            c.replicas,
            c.agents,
            c.slots,
            thousands(c.students as f64),
            c.window.as_secs_f64(),
            self.kill_at_ms as f64 / 1000.0
        )
    }

    /// The figures, one row each.
    pub fn table(&self) -> Table {
        let mut t = Table::new(["figure", "result"]);
        let s = |ms: i64| format!("{:+.2} s", ms as f64 / 1000.0);
        t.row([
            "allocations failed (first → last failed click, from the kill)".to_owned(),
            match self.failed_span() {
                Some((a, b)) => format!(
                    "{:.2} s ({} → {}), {} failed clicks",
                    self.window_ms() as f64 / 1000.0,
                    s(a),
                    s(b),
                    self.failed_clicks()
                ),
                None => "none failed".to_owned(),
            },
        ]);
        let r = &self.requests;
        t.row([
            "requests".to_owned(),
            format!(
                "{} sent: {} answered 503, {} unanswered, {} other 5xx/429, {} unexpected",
                r["sent"],
                r["refused503"],
                r["transportErrors"],
                r["otherFailures"],
                r["unexpected"]
            ),
        ]);
        t.row([
            "students answered 200/201".to_owned(),
            format!(
                "{} of {} (the last {})",
                self.answered,
                self.config.students,
                self.last_answer_ms.map_or("–".into(), |ms| format!(
                    "{} after the kill",
                    s(ms as i64)
                ))
            ),
        ]);
        let h = &self.holdings;
        t.row([
            "still at the desktop answered / placed again / at none".to_owned(),
            format!("{} / {} / {}", h.same, h.re_placed, h.nothing),
        ]);
        t.row([
            "lost writes repaired (adopted from heartbeats: sessions + reservations)".to_owned(),
            format!(
                "{} + {}",
                self.adopted_by_heartbeats.0, self.adopted_by_heartbeats.1
            ),
        ]);
        t.row([
            "serve restarted / replicas naming the new primary".to_owned(),
            format!(
                "{} / {} of {} ({} → {})",
                self.restarted.len(),
                self.replicas_named
                    .iter()
                    .filter(|p| **p == self.promoted)
                    .count(),
                self.replicas_named.len(),
                self.first_primary,
                self.promoted
            ),
        ]);
        for c in &self.checks {
            t.row([
                c.name.to_owned(),
                format!("{}: {}", if c.passed { "pass" } else { "FAIL" }, c.detail),
            ]);
        }
        t
    }

    /// The whole report as one JSON object.
    pub fn json(&self) -> Value {
        let c = &self.config;
        json!({
            "scenario": "failover",
            "store": self.engine.name(),
            "sync": self.sync,
            "storeDetail": self.store_detail,
            "replicas": c.replicas, "agents": c.agents, "slotsPerAgent": c.slots,
            "students": c.students, "windowSec": c.window.as_secs_f64(),
            "promoteAfterMs": c.promote_after.as_millis() as u64,
            "killAtMs": self.kill_at_ms,
            "failover": self.failover_note,
            "failedClicks": self.failed_clicks(),
            "failedBeforeKill": self.failed_before_kill,
            "failedWindowMs": self.window_ms(),
            "firstFailedAfterKillMs": self.failed_span().map(|s| s.0),
            "lastFailedAfterKillMs": self.failed_span().map(|s| s.1),
            "answered": self.answered,
            "lastAnswerAfterKillMs": self.last_answer_ms,
            "surgeOverAfterKillMs": self.surge_over_ms,
            "requests": self.requests,
            "primaryBefore": self.first_primary,
            "primaryAfter": self.promoted,
            "replicasName": self.replicas_named,
            "serveRestarted": self.restarted,
            "holdings": {
                "same": self.holdings.same, "rePlaced": self.holdings.re_placed,
                "nothing": self.holdings.nothing, "readForMs": self.holdings.read_for_ms,
            },
            "adoptedByHeartbeats": {
                "sessions": self.adopted_by_heartbeats.0,
                "reservations": self.adopted_by_heartbeats.1,
            },
            "reconcilePass": self.pass,
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name, "passed": c.passed, "detail": c.detail,
            })).collect::<Vec<_>>(),
            "passed": self.passed(),
            "logs": self.logs.as_ref().map(|p| p.display().to_string()),
        })
    }
}
