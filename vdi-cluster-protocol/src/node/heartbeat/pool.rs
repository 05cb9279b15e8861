//! [`PoolJson`]: a worker's prewarm pool per exam, as heartbeats carry it
//! in `prewarmPool`.
//!
//! ```json
//! {"prewarmPool": {"math-101": {"starting": 2, "ready": 5, "failed": 1}}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::worker::{ExamPool, PoolReport};
use vdi_cluster_core::{ExamId, ValidationError};

/// One exam's prewarmed machines on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamPoolJson {
    /// Machines still starting.
    #[serde(default)]
    #[schema(maximum = 1_000_000)]
    pub starting: u32,
    /// Machines started and idle, waiting for the exam's next allocate.
    #[serde(default)]
    #[schema(maximum = 1_000_000)]
    pub ready: u32,
    /// Starts that failed since the exam's pool began or was discarded.
    #[serde(default)]
    #[schema(maximum = 1_000_000)]
    pub failed: u32,
}

impl From<ExamPool> for ExamPoolJson {
    fn from(p: ExamPool) -> Self {
        Self {
            starting: p.starting,
            ready: p.ready,
            failed: p.failed,
        }
    }
}

impl From<ExamPoolJson> for ExamPool {
    fn from(p: ExamPoolJson) -> Self {
        Self {
            starting: p.starting,
            ready: p.ready,
            failed: p.failed,
        }
    }
}

/// The prewarm pool per exam: exam id → its machines. Exams with nothing
/// to report are left out; an empty pool is left out of the heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct PoolJson(
    /// By exam id.
    pub BTreeMap<String, ExamPoolJson>,
);

impl PoolJson {
    /// Whether no exam is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Core's report; exam ids are checked here (field
    /// `prewarmPool.<examId>`), sizes by core.
    pub fn into_report(self) -> Result<PoolReport, ValidationError> {
        let exams = self
            .0
            .into_iter()
            .map(|(id, pool)| {
                let exam = ExamId::parse("prewarmPool", id).map_err(|e| {
                    ValidationError::new("prewarmPool", format!("an exam id {}", e.message))
                })?;
                Ok((exam, ExamPool::from(pool)))
            })
            .collect::<Result<BTreeMap<_, _>, ValidationError>>()?;
        Ok(PoolReport { exams })
    }
}

impl From<&PoolReport> for PoolJson {
    fn from(r: &PoolReport) -> Self {
        Self(
            r.exams
                .iter()
                .map(|(e, p)| (e.to_string(), ExamPoolJson::from(*p)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_pool_keeps_its_field_names_and_round_trips() {
        let body = json!({"math": {"starting": 2, "ready": 5, "failed": 1}, "bio": {"ready": 1}});
        let pool: PoolJson = serde_json::from_value(body).unwrap();
        let report = pool.clone().into_report().unwrap();
        let math = ExamId::parse("examId", "math").unwrap();
        assert_eq!(report.of(&math).held(), 7);
        assert_eq!(PoolJson::from(&report), pool);
        assert_eq!(
            serde_json::to_value(&pool).unwrap()["bio"],
            json!({"starting": 0, "ready": 1, "failed": 0})
        );
    }

    #[test]
    fn a_bad_exam_id_names_the_field() {
        let pool: PoolJson = serde_json::from_value(json!({" ": {"ready": 1}})).unwrap();
        assert_eq!(pool.into_report().unwrap_err().field, "prewarmPool");
    }
}
