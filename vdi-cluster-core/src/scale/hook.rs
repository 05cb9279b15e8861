//! [`ScaleHook`]: how the leader asks for workers and gives them back.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::ids::{ExamId, WorkerId};
use crate::scheduler::Constraints;
use crate::time::Timestamp;

/// More workers, asked for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleUp {
    /// The request's id: the same on every retry, so the hook can answer
    /// a repeated call with the workers it already started.
    pub request: String,
    /// Slots missing.
    pub slots: u32,
    /// What the workers must offer.
    pub constraints: Constraints,
    /// When they must have joined.
    pub deadline: Timestamp,
    /// The exams that need them.
    pub exams: Vec<ExamId>,
}

/// Workers to stop: drained, needed by no booked exam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleDown {
    /// The request that brought them.
    pub request: String,
    /// Their codes.
    pub workers: Vec<WorkerId>,
}

/// The hook failed; the step is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scale hook failed: {0}")]
pub struct ScaleHookError(pub String);

/// Starts and stops workers (a cloud's instance API behind a command, in
/// the reference server).
///
/// # Contract
///
/// * Both calls may be repeated with the same request (after a timeout,
///   a failure or a new leader): an implementation answers a repeated
///   `scale_up` with the workers it started for that request the first
///   time, and a repeated `scale_down` succeeds.
/// * `scale_up` answers the codes the workers will register under; they
///   join the control plane like any other worker.
#[async_trait]
pub trait ScaleHook: Debug + Send + Sync + 'static {
    /// Starts workers offering `order.slots` slots; answers their codes.
    async fn scale_up(&self, order: &ScaleUp) -> Result<Vec<WorkerId>, ScaleHookError>;

    /// Stops `order.workers`.
    async fn scale_down(&self, order: &ScaleDown) -> Result<(), ScaleHookError>;
}
