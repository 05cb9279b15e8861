//! Worker nodes in a boot storm: a start takes `base × (1 + k × in_flight)`,
//! where `in_flight` counts the starts running on the node (itself
//! included), at every moment: the starts share the host (its disk, CPU,
//! hypervisor), so each one progresses at `1 ÷ (1 + k × in_flight)` of its
//! solo speed, re-read every [`STEP`], and a start joined by others slows
//! down too. A start still unfinished at the node's start timeout fails
//! (the hypervisor gives up; the caller gets a refusal and nothing runs),
//! having slowed the others all along.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::client::{DesktopSettings, WorkerCallError, WorkerClient};
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{ExamId, SessionKey};

/// How often a start re-reads the starts in flight on its node.
pub const STEP: Duration = Duration::from_millis(20);

/// How a storm node's starts take their time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartModel {
    /// A start alone on its node.
    pub base: Duration,
    /// How much each start in flight slows a new one.
    pub k: f64,
    /// Past this a start fails.
    pub timeout: Duration,
}

impl StartModel {
    /// A start's time with `in_flight` starts running, itself included.
    pub fn start_time(&self, in_flight: u32) -> Duration {
        self.base.mul_f64(1.0 + self.k * f64::from(in_flight))
    }
}

/// The storm's nodes, by the number in their code (`storm-<n>`).
#[derive(Debug)]
pub struct StormNodes {
    model: StartModel,
    in_flight: Vec<AtomicU32>,
    started: AtomicU64,
    timed_out: AtomicU64,
    most_in_flight: AtomicU32,
}

/// What the nodes saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeTally {
    /// Starts that succeeded.
    pub started: u64,
    /// Starts that failed at the start timeout.
    pub timed_out: u64,
    /// The most starts in flight on one node at once.
    pub most_in_flight: u32,
}

impl StormNodes {
    /// `nodes` nodes with `model`.
    pub fn new(nodes: usize, model: StartModel) -> Arc<Self> {
        Arc::new(Self {
            model,
            in_flight: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
            started: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            most_in_flight: AtomicU32::new(0),
        })
    }

    /// The code of node `n`.
    pub fn code(n: usize) -> String {
        format!("storm-{n:03}")
    }

    /// What the nodes saw so far.
    pub fn tally(&self) -> NodeTally {
        NodeTally {
            started: self.started.load(Ordering::SeqCst),
            timed_out: self.timed_out.load(Ordering::SeqCst),
            most_in_flight: self.most_in_flight.load(Ordering::SeqCst),
        }
    }

    fn node(&self, record: &WorkerRecord) -> Option<&AtomicU32> {
        let n: usize = record.id.as_str().strip_prefix("storm-")?.parse().ok()?;
        self.in_flight.get(n)
    }
}

/// Takes one off a node's starts in flight when its start ends, however
/// it ends (the caller may stop waiting).
struct Running<'a>(&'a AtomicU32);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl WorkerClient for StormNodes {
    async fn allocate(
        &self,
        worker: &WorkerRecord,
        _: &SessionKey,
        _: &DesktopSettings,
    ) -> Result<serde_json::Value, WorkerCallError> {
        let Some(node) = self.node(worker) else {
            return Err(WorkerCallError::BadAnswer("not a storm node".into()));
        };
        let n = node.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(node);
        self.most_in_flight.fetch_max(n, Ordering::SeqCst);
        let began = tokio::time::Instant::now();
        // Work done, in solo time.
        let mut done = Duration::ZERO;
        while done < self.model.base {
            if began.elapsed() >= self.model.timeout {
                self.timed_out.fetch_add(1, Ordering::SeqCst);
                return Err(WorkerCallError::Refused {
                    status: 504,
                    message: "the desktop did not start in time".into(),
                });
            }
            let in_flight = node.load(Ordering::SeqCst).max(1);
            self.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            let tick = tokio::time::Instant::now();
            tokio::time::sleep(STEP).await;
            let slowdown = self.model.start_time(in_flight).as_secs_f64()
                / self.model.base.as_secs_f64().max(1e-9);
            done += tick.elapsed().div_f64(slowdown.max(1.0));
        }
        self.started.fetch_add(1, Ordering::SeqCst);
        let took = began.elapsed();
        Ok(serde_json::json!({ "startedMs": took.as_millis() as u64 }))
    }

    async fn release(&self, _: &WorkerRecord, _: &SessionKey) -> Result<(), WorkerCallError> {
        Ok(())
    }

    async fn prewarm(
        &self,
        _: &WorkerRecord,
        _: &ExamId,
        count: u32,
        _: &DesktopSettings,
    ) -> Result<u32, WorkerCallError> {
        Ok(count)
    }

    async fn discard_prewarm(&self, _: &WorkerRecord, _: &ExamId) -> Result<u32, WorkerCallError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_slows_with_the_starts_in_flight() {
        let model = StartModel {
            base: Duration::from_secs(1),
            k: 0.5,
            timeout: Duration::from_secs(10),
        };
        assert_eq!(model.start_time(1), Duration::from_millis(1_500));
        assert_eq!(model.start_time(18), Duration::from_secs(10));
        assert_eq!(StormNodes::code(7), "storm-007");
    }
}
