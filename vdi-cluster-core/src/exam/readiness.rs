//! Prewarm readiness and keeping the target, pure.
//!
//! Workers report their prewarm pool per exam on every heartbeat
//! ([`PoolReport`](crate::worker::PoolReport)). From those reports:
//!
//! * [`readiness_percent`]: ready ÷ target, as a whole percentage bounded
//!   to `0..=100` (a target of zero is 100 % ready; more ready than the
//!   target is still 100 %).
//! * [`readiness`]: an exam's figures over the fleet — ready, starting and
//!   failed machines on live workers, machines lost with workers that went
//!   away, and each worker's own readiness.
//! * [`plan_top_up`]: between the timed prewarm and the exam's start, what
//!   to prewarm where so that ready + starting machines on live workers
//!   reach the target again (failed machines and those on workers that are
//!   no longer live are lost).

use serde::{Deserialize, Serialize};

use crate::ids::WorkerId;
use crate::scheduler::{PrewarmShare, plan_prewarm};
use crate::time::Timestamp;
use crate::worker::ExamPool;

/// `ready ÷ target` as a whole percentage, rounded down, bounded to
/// `0..=100`; a target of zero is fully ready.
pub fn readiness_percent(ready: u32, target: u32) -> u8 {
    if target == 0 || ready >= target {
        return 100;
    }
    let pct = u64::from(ready) * 100 / u64::from(target);
    u8::try_from(pct).unwrap_or(100).min(99)
}

/// What the control plane knows about one worker for one exam's prewarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSight {
    /// The worker.
    pub worker: WorkerId,
    /// Its latest report for the exam.
    pub pool: ExamPool,
    /// Whether its machines count: reachable, enabled, not draining and
    /// not deregistered. Machines on a worker that is not live are lost.
    pub live: bool,
    /// Free slots when it may take the exam's prewarm now (live, with room,
    /// matching the exam's constraints); `None` otherwise.
    pub room: Option<u32>,
    /// When its latest report arrived (the control plane's clock).
    pub reported_at: Option<Timestamp>,
}

/// One worker's part of an exam's readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReadiness {
    /// Its report for the exam.
    pub pool: ExamPool,
    /// Whether its machines count (see [`PoolSight::live`]).
    pub live: bool,
    /// Its ready machines ÷ the machines it took (`ready + starting +
    /// failed`), as a percentage.
    pub readiness_percent: u8,
}

/// An exam's prewarm readiness over the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// Machines the exam should have ready.
    pub target: u32,
    /// Sums over live workers.
    pub live: ExamPool,
    /// Ready or starting machines on workers that are not live.
    pub lost: u32,
    /// `live.ready ÷ target`.
    pub readiness_percent: u8,
    /// Per worker holding anything for the exam, by worker code.
    pub workers: Vec<(WorkerId, WorkerReadiness)>,
}

/// An exam's readiness from what the workers report.
pub fn readiness(target: u32, sights: &[PoolSight]) -> Readiness {
    let mut out = Readiness {
        target,
        ..Readiness::default()
    };
    for s in sights.iter().filter(|s| !s.pool.is_empty()) {
        if s.live {
            out.live = out.live.plus(s.pool);
        } else {
            out.lost = out.lost.saturating_add(s.pool.held());
        }
        let took = s.pool.held().saturating_add(s.pool.failed);
        out.workers.push((
            s.worker.clone(),
            WorkerReadiness {
                pool: s.pool,
                live: s.live,
                readiness_percent: readiness_percent(s.pool.ready, took),
            },
        ));
    }
    out.workers.sort_by(|a, b| a.0.cmp(&b.0));
    out.readiness_percent = readiness_percent(out.live.ready, target);
    out
}

/// What keeping an exam's prewarm target needs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopUp {
    /// Ready and starting machines on live workers reach the target.
    Enough,
    /// A live worker has not reported after the last prewarm call: its
    /// report may not show what that call started yet. Decide again later.
    Wait {
        /// The worker whose report is older.
        worker: WorkerId,
    },
    /// Machines are missing and no eligible worker has room.
    NoRoom {
        /// Machines missing.
        missing: u32,
    },
    /// Prewarm these shares.
    Start {
        /// Machines missing (the shares may add up to fewer, capped by
        /// room and the prewarm maximum).
        missing: u32,
        /// Where.
        shares: Vec<PrewarmShare>,
    },
}

/// What to prewarm where so that `target` machines are ready or starting on
/// live workers, given the latest reports and the last prewarm call at
/// `since`.
///
/// Ready and starting machines on live workers count; failed ones and
/// those on workers that are not live do not. Nothing is decided while a
/// live worker's latest report is not later than `since` ([`TopUp::Wait`]),
/// so a call's machines are never started twice. The missing machines are split with
/// the prewarm planner over workers with room, preferring those that
/// reported no failure for the exam (all of them if those have no room),
/// at most `max` in total.
pub fn plan_top_up(target: u32, sights: &[PoolSight], since: Timestamp, max: u32) -> TopUp {
    let counted: u32 = sights
        .iter()
        .filter(|s| s.live)
        .fold(0u32, |n, s| n.saturating_add(s.pool.held()));
    if counted >= target {
        return TopUp::Enough;
    }
    if let Some(s) = sights
        .iter()
        .find(|s| s.live && s.reported_at.is_none_or(|t| t <= since))
    {
        return TopUp::Wait {
            worker: s.worker.clone(),
        };
    }
    let missing = target - counted;
    let room = |clean_only: bool| -> Vec<(WorkerId, u32)> {
        sights
            .iter()
            .filter(|s| s.live && (!clean_only || s.pool.failed == 0))
            .filter_map(|s| s.room.filter(|r| *r > 0).map(|r| (s.worker.clone(), r)))
            .collect()
    };
    let mut shares = plan_prewarm(&room(true), missing, max);
    if shares.is_empty() {
        shares = plan_prewarm(&room(false), missing, max);
    }
    if shares.is_empty() {
        TopUp::NoRoom { missing }
    } else {
        TopUp::Start { missing, shares }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(code: &str) -> WorkerId {
        WorkerId::parse("code", code).unwrap()
    }

    fn sight(code: &str, ready: u32, starting: u32, failed: u32, live: bool) -> PoolSight {
        PoolSight {
            worker: w(code),
            pool: ExamPool {
                starting,
                ready,
                failed,
            },
            live,
            room: live.then_some(10),
            reported_at: Some(Timestamp(100)),
        }
    }

    #[test]
    fn percent_edges() {
        assert_eq!(readiness_percent(0, 0), 100);
        assert_eq!(readiness_percent(5, 0), 100);
        assert_eq!(readiness_percent(0, 3), 0);
        assert_eq!(readiness_percent(2, 3), 66);
        assert_eq!(readiness_percent(999, 1000), 99);
        assert_eq!(readiness_percent(7, 3), 100);
    }

    #[test]
    fn lost_machines_are_replaced_on_other_workers() {
        let sights = [
            sight("a", 3, 0, 0, false),
            sight("b", 2, 0, 1, true),
            sight("c", 0, 0, 0, true),
        ];
        let r = readiness(6, &sights);
        assert_eq!((r.live.ready, r.live.failed, r.lost), (2, 1, 3));
        assert_eq!(r.readiness_percent, 33);
        assert_eq!(r.workers.len(), 2, "c holds nothing");
        let TopUp::Start { missing, shares } = plan_top_up(6, &sights, Timestamp(50), 80) else {
            panic!("a top-up")
        };
        assert_eq!(missing, 4);
        assert_eq!(
            shares,
            vec![PrewarmShare {
                worker: w("c"),
                count: 4
            }],
            "b failed, a is gone"
        );
    }

    #[test]
    fn a_report_older_than_the_last_call_waits() {
        let mut sights = [sight("a", 0, 0, 0, true)];
        sights[0].reported_at = Some(Timestamp(10));
        assert_eq!(
            plan_top_up(2, &sights, Timestamp(50), 80),
            TopUp::Wait { worker: w("a") }
        );
        sights[0].room = None;
        sights[0].reported_at = Some(Timestamp(60));
        assert_eq!(
            plan_top_up(2, &sights, Timestamp(50), 80),
            TopUp::NoRoom { missing: 2 }
        );
        sights[0].pool.starting = 2;
        assert_eq!(plan_top_up(2, &sights, Timestamp(50), 80), TopUp::Enough);
    }
}
