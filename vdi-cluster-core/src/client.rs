//! Calls from the control plane to a worker node.
//!
//! The reference server implements [`WorkerClient`] over HTTP (the exam platform's
//! `/api/vdi/cluster/allocate|release|prewarm` with `x-cluster-token`, and
//! `DELETE /api/vdi/cluster/prewarm/:examId` to discard an exam's machines);
//! tests use a mock or the simulated workers of the `testkit` feature. The
//! orchestration applies the call timeout (`CLUSTER_API_TIMEOUT_MS`) itself.
//!
//! A rehearsal's check ([`WorkerClient::check`]) starts one test desktop
//! of an exam through the worker's provisioner and answers what it found
//! ([`CheckReport`]).
//!
//! An allocation or prewarm carries [`DesktopSettings`]: what the exam,
//! as booked on the calendar, asks of the desktops it starts (its network
//! policy, which the node agent applies over its own default).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::exam::Exam;
use crate::ids::{ExamId, SessionKey};
use crate::network::NetworkPolicy;
use crate::rehearsal::CheckReport;
use crate::worker::WorkerRecord;

/// What an exam asks of the desktops a call starts, read from its booking
/// on the calendar; the default (nothing asked) for an exam not booked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DesktopSettings {
    /// The exam's network policy; `None`: the node's own default applies
    /// ([`crate::network::precedence`]).
    pub network_policy: Option<NetworkPolicy>,
}

impl DesktopSettings {
    /// What the booked `exam` asks of its desktops.
    pub fn of(exam: &Exam) -> Self {
        Self {
            network_policy: exam.network_policy.clone(),
        }
    }
}

/// Why a call to a worker failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerCallError {
    /// No answer within the call timeout.
    #[error("timed out")]
    Timeout,
    /// The worker could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The worker answered with an error.
    #[error("refused ({status}): {message}")]
    Refused {
        /// HTTP status or equivalent.
        status: u16,
        /// The worker's message.
        message: String,
    },
    /// The worker's answer could not be understood.
    #[error("bad answer: {0}")]
    BadAnswer(String),
}

impl WorkerCallError {
    /// Whether the worker may have acted on the call although it failed:
    /// every failure except a definite refusal (a timeout, a connection
    /// lost after the request may have been sent, an unreadable answer).
    pub fn may_have_started(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

/// The client the control plane uses to reach worker nodes.
#[async_trait]
pub trait WorkerClient: Debug + Send + Sync + 'static {
    /// Starts (or returns the already started) session on `worker`, its
    /// desktop set up as `settings` ask. The answer — connection details
    /// for the remote desktop — is stored with the dispatch and handed to
    /// the exam application untouched.
    async fn allocate(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
        settings: &DesktopSettings,
    ) -> Result<serde_json::Value, WorkerCallError>;

    /// Stops the session on `worker`. Releasing an unknown session succeeds.
    async fn release(&self, worker: &WorkerRecord, key: &SessionKey)
    -> Result<(), WorkerCallError>;

    /// Prewarms `count` machines for `exam` on `worker`, set up as
    /// `settings` ask; returns how many the worker accepted.
    async fn prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        count: u32,
        settings: &DesktopSettings,
    ) -> Result<u32, WorkerCallError>;

    /// Discards `exam`'s idle prewarmed machines on `worker` (and those
    /// still starting, once they have started); returns how many idle
    /// machines were discarded. Discarding an exam the worker holds
    /// nothing of succeeds with 0.
    async fn discard_prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
    ) -> Result<u32, WorkerCallError>;

    /// A rehearsal's check: starts one test desktop of `exam` on `worker`
    /// (set up as `settings` ask) through its provisioner, measures the
    /// start, stops it, and answers what the provisioner found (the
    /// image, its own checks). A client that cannot check refuses (501).
    async fn check(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        settings: &DesktopSettings,
    ) -> Result<CheckReport, WorkerCallError> {
        let _ = (worker, exam, settings);
        Err(WorkerCallError::Refused {
            status: 501,
            message: "this worker client cannot run a rehearsal's check".into(),
        })
    }
}
