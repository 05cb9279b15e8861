//! A worker's prewarm pool as its heartbeats report it: per exam, the
//! machines still starting, those ready (idle, waiting to be claimed) and
//! those whose start failed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::capacity::MAX_SESSIONS;
use crate::ids::ExamId;
use crate::validation::ValidationError;

/// Most exams one pool report may list.
pub const MAX_POOL_EXAMS: usize = 1_000;

/// One exam's prewarmed machines on one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExamPool {
    /// Machines still starting.
    pub starting: u32,
    /// Machines started and idle, waiting for the exam's next allocate.
    pub ready: u32,
    /// Starts that failed since the exam's pool began (or was last
    /// discarded).
    pub failed: u32,
}

impl ExamPool {
    /// Whether all three counts are zero.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Machines ready or on their way (`ready + starting`).
    pub fn held(&self) -> u32 {
        self.ready.saturating_add(self.starting)
    }

    /// The sum of two pools, count by count (saturating).
    pub fn plus(self, other: Self) -> Self {
        Self {
            starting: self.starting.saturating_add(other.starting),
            ready: self.ready.saturating_add(other.ready),
            failed: self.failed.saturating_add(other.failed),
        }
    }
}

/// A worker's prewarm pool, per exam (exams with nothing to report are
/// left out).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PoolReport {
    /// Per exam.
    pub exams: BTreeMap<ExamId, ExamPool>,
}

impl PoolReport {
    /// Whether no exam is listed.
    pub fn is_empty(&self) -> bool {
        self.exams.is_empty()
    }

    /// `exam`'s pool (empty if not listed).
    pub fn of(&self, exam: &ExamId) -> ExamPool {
        self.exams.get(exam).copied().unwrap_or_default()
    }

    /// Checks sizes; errors name the field (`prewarmPool`).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.exams.len() > MAX_POOL_EXAMS {
            return Err(ValidationError::new(
                "prewarmPool",
                format!("at most {MAX_POOL_EXAMS} exams"),
            ));
        }
        for (exam, pool) in &self.exams {
            for (name, n) in [
                ("starting", pool.starting),
                ("ready", pool.ready),
                ("failed", pool.failed),
            ] {
                if n > MAX_SESSIONS {
                    return Err(ValidationError::new(
                        format!("prewarmPool.{exam}.{name}"),
                        format!("must be at most {MAX_SESSIONS}"),
                    ));
                }
            }
        }
        Ok(())
    }
}
