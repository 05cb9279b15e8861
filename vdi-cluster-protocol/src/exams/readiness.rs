//! An exam's prewarm readiness and allocation figures, as the calendar and
//! `GET /api/vdi/exams/{examId}` show them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::exam::{Readiness, WorkerReadiness};

use crate::node::ExamPoolJson;

/// An exam's prewarm readiness: ready ÷ target, from the workers' latest
/// heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessJson {
    /// Machines the prewarm plan asks for.
    pub target: u32,
    /// Machines ready (idle, waiting for a student) on live workers.
    pub ready: u32,
    /// Machines still starting on live workers.
    pub starting: u32,
    /// Starts that failed on live workers.
    pub failed: u32,
    /// Ready or starting machines on workers that are no longer live
    /// (offline, unreachable, draining or disabled): lost.
    pub lost: u32,
    /// `ready ÷ target`, whole percent, 0–100 (100 when the target is 0).
    #[schema(maximum = 100)]
    pub readiness_percent: u8,
}

impl From<&Readiness> for ReadinessJson {
    fn from(r: &Readiness) -> Self {
        Self {
            target: r.target,
            ready: r.live.ready,
            starting: r.live.starting,
            failed: r.live.failed,
            lost: r.lost,
            readiness_percent: r.readiness_percent,
        }
    }
}

/// One worker's part of an exam's prewarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReadinessJson {
    /// Its machines for the exam.
    #[serde(flatten)]
    pub pool: ExamPoolJson,
    /// Whether they count (the worker is reachable and in service).
    pub live: bool,
    /// Its ready machines ÷ the machines it took (ready + starting +
    /// failed), whole percent.
    #[schema(maximum = 100)]
    pub readiness_percent: u8,
}

impl From<&WorkerReadiness> for WorkerReadinessJson {
    fn from(w: &WorkerReadiness) -> Self {
        Self {
            pool: ExamPoolJson::from(w.pool),
            live: w.live,
            readiness_percent: w.readiness_percent,
        }
    }
}

/// An exam's prewarm in its figures: the totals and each worker's part.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmFiguresJson {
    /// The totals.
    #[serde(flatten)]
    pub readiness: ReadinessJson,
    /// Per worker holding machines of the exam, by worker code.
    pub workers: BTreeMap<String, WorkerReadinessJson>,
}

impl From<&Readiness> for PrewarmFiguresJson {
    fn from(r: &Readiness) -> Self {
        Self {
            readiness: ReadinessJson::from(r),
            workers: r
                .workers
                .iter()
                .map(|(w, p)| (w.to_string(), WorkerReadinessJson::from(p)))
                .collect(),
        }
    }
}

/// An exam's allocations as the answering replica counted them since it
/// started (each replica counts its own; the figures are not summed over
/// replicas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocationFiguresJson {
    /// Students placed (a new session, or an existing one returned).
    pub placed: u64,
    /// Allocations refused (no capacity, or the workers failed).
    pub refused: u64,
    /// Median time from the allocate request to the desktop's connection
    /// details, milliseconds; absent before the first placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_desktop_p50_ms: Option<u64>,
    /// 95th percentile of the same, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_desktop_p95_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::WorkerId;
    use vdi_cluster_core::worker::ExamPool;

    use super::*;

    #[test]
    fn readiness_field_names() {
        let pool = ExamPool {
            starting: 1,
            ready: 2,
            failed: 0,
        };
        let r = Readiness {
            target: 4,
            live: pool,
            lost: 3,
            readiness_percent: 50,
            workers: vec![(
                WorkerId::parse("code", "w1").unwrap(),
                WorkerReadiness {
                    pool,
                    live: true,
                    readiness_percent: 66,
                },
            )],
        };
        assert_eq!(
            serde_json::to_value(PrewarmFiguresJson::from(&r)).unwrap(),
            json!({
                "target": 4, "ready": 2, "starting": 1, "failed": 0, "lost": 3,
                "readinessPercent": 50,
                "workers": {"w1": {"starting": 1, "ready": 2, "failed": 0, "live": true,
                                   "readinessPercent": 66}},
            })
        );
        assert_eq!(
            serde_json::to_value(AllocationFiguresJson {
                placed: 3,
                refused: 1,
                time_to_desktop_p50_ms: Some(120),
                time_to_desktop_p95_ms: Some(900),
            })
            .unwrap(),
            json!({"placed": 3, "refused": 1, "timeToDesktopP50Ms": 120,
                   "timeToDesktopP95Ms": 900})
        );
    }
}
