//! Prewarm: machines started ahead of an exam (the exam platform's "prewarm", docs/compat/exam-platform-registry.md).

use std::collections::HashSet;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::Exams;
use crate::client::DesktopSettings;
use crate::error::{Error, Result};
use crate::ids::{ExamId, WorkerId};
use crate::scheduler::{Constraints, PrewarmShare, exclusion, plan_prewarm};
use crate::worker::{WorkerRecord, WorkerView};

/// Largest prewarm request accepted (before the `prewarm_max` cap).
pub const MAX_PREWARM_REQUEST: u32 = 100_000;

/// A worker's prewarm call that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmFailure {
    /// The worker.
    pub worker: WorkerId,
    /// Its share.
    pub count: u32,
    /// Why it failed.
    pub error: String,
}

/// What a prewarm did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmReport {
    /// The exam.
    pub exam_id: ExamId,
    /// Machines asked for.
    pub requested: u32,
    /// Machines planned: `min(requested, cluster available, prewarm max)`.
    pub planned: u32,
    /// Machines the workers accepted.
    pub started: u32,
    /// The split.
    pub shares: Vec<PrewarmShare>,
    /// Calls that failed.
    pub failures: Vec<PrewarmFailure>,
}

impl Exams {
    /// Prewarms `count` machines for `exam`: split across eligible workers
    /// (not those its rehearsal left out) in proportion to their free
    /// slots (largest remainder), capped by the
    /// cluster's free slots and `VDI_PREWARM_MAX`, called with
    /// `VDI_PREWARM_CONCURRENCY` calls in flight.
    pub async fn prewarm(
        &self,
        exam: ExamId,
        count: u32,
        constraints: Constraints,
    ) -> Result<PrewarmReport> {
        if count == 0 || count > MAX_PREWARM_REQUEST {
            return Err(Error::invalid(
                "count",
                format!("must be from 1 to {MAX_PREWARM_REQUEST}"),
            ));
        }
        constraints.validate()?;
        let views = self.shared.worker_views().await?;
        let none_tried = HashSet::new();
        let left_out = self.left_out(&exam).await?;
        let eligible: Vec<(WorkerId, u32)> = views
            .iter()
            .filter(|v| exclusion(v, &constraints, &none_tried).is_none())
            .filter(|v| !left_out.contains(v.id()))
            .map(|v| (v.id().clone(), v.available_sessions))
            .collect();
        let shares = plan_prewarm(&eligible, count, self.shared.config.prewarm_max);
        let planned = shares.iter().map(|s| s.count).sum();
        let settings = self.placement.desktop_settings(&exam).await?;
        let (started, failures) = self.call_prewarm(&exam, &shares, &views, &settings).await;
        Ok(PrewarmReport {
            exam_id: exam,
            requested: count,
            planned,
            started,
            shares,
            failures,
        })
    }

    /// Calls each share's worker (found in `views`) with
    /// `VDI_PREWARM_CONCURRENCY` calls in flight; returns the machines the
    /// workers accepted and the calls that failed.
    pub(crate) async fn call_prewarm(
        &self,
        exam: &ExamId,
        shares: &[PrewarmShare],
        views: &[WorkerView],
        settings: &DesktopSettings,
    ) -> (u32, Vec<PrewarmFailure>) {
        let calls = shares.iter().cloned().map(|share| {
            let record = views
                .iter()
                .find(|v| v.id() == &share.worker)
                .map(|v| v.record.clone());
            let exam = exam.clone();
            async move {
                let Some(record) = record else {
                    return Err((share, "worker vanished".to_owned()));
                };
                self.prewarm_share(&record, &exam, share, settings).await
            }
        });
        let results: Vec<_> = futures::stream::iter(calls)
            .buffer_unordered(self.shared.config.prewarm_concurrency.max(1))
            .collect()
            .await;
        let mut started = 0;
        let mut failures = Vec::new();
        for result in results {
            match result {
                Ok(n) => started += n,
                Err((share, error)) => failures.push(PrewarmFailure {
                    worker: share.worker,
                    count: share.count,
                    error,
                }),
            }
        }
        (started, failures)
    }

    /// One share's calls: one call of `share.count` machines, or with
    /// paced starts as many calls as the worker's free start permits allow
    /// at a time, each call's permits held while its machines start
    /// (prewarm and placements share the worker's limit, invariant F).
    async fn prewarm_share(
        &self,
        record: &WorkerRecord,
        exam: &ExamId,
        share: PrewarmShare,
        settings: &DesktopSettings,
    ) -> Result<u32, (PrewarmShare, String)> {
        let mut started = 0;
        while started < share.count {
            let left = share.count - started;
            let permits = match self.placement.prewarm_permits(record, left).await {
                Ok(permits) => permits,
                Err(e) => return Err((share, e.to_string())),
            };
            let count = permits
                .as_ref()
                .map_or(left, |p| u32::try_from(p.len()).unwrap_or(left));
            if count == 0 {
                return Err((share, "no start permit in time".to_owned()));
            }
            let call = timeout(
                self.shared.config.worker_call_timeout,
                self.shared.client.prewarm(record, exam, count, settings),
            )
            .await;
            if let Some(permits) = permits {
                let queue = self
                    .placement
                    .start_queue_of(&record.id)
                    .await
                    .unwrap_or_default();
                self.placement.hold_while_starting(permits, &queue);
            }
            match call {
                Ok(Ok(n)) if n >= count => started += count,
                // The worker took fewer: it has no room for more.
                Ok(Ok(n)) => return Ok(started + n),
                Ok(Err(e)) => return Err((share, e.to_string())),
                Err(_) => return Err((share, "timed out".to_owned())),
            }
        }
        Ok(started)
    }
}
