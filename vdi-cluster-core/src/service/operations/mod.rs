//! The operations wing: what keeps the records true and the operators
//! informed, mostly on the background leader.
//!
//! `reconcile` is the pass that applies
//! [`reconcile::judge`](crate::reconcile::judge) to every dispatch, over
//! bounded steps resumed from a cursor kept beside the background lease
//! (with the fleet's stored reports and the health monitor); `background`
//! is the leased loop that runs its steps with the other wings' periodic steps (health,
//! at-risk exams, due prewarms and targets, waiting rooms, a store outage
//! on recovery); `webhooks` holds the endpoints operators configure and
//! the delivery step; `capacity` asks the scale hook for the workers
//! booked exams will be short of and gives them back; `stats` the
//! read-only views of the cluster; `vms` sessions and prewarmed machines
//! as Aetherium's VMs.
//!
//! **Owns** this replica's migration suspension and orphan reminders, its
//! memory of the leader's pass between steps, and the webhook sender.
//!
//! **Writes** through [`DispatchStore`](crate::store::DispatchStore)
//! (reconcile's removals, orphan marks and recounts, fenced by the
//! background lease), [`LeaderLease`](crate::store::LeaderLease) (the
//! lease, and the pass's checkpoint beside it, fenced by it), and
//! [`Outbox`](crate::outbox::Outbox) (observations under a key naming the
//! occurrence, endpoints, deliveries leased and acknowledged under their
//! lease), and [`CapacityRequests`](crate::scale::CapacityRequests)
//! (requests inserted if absent, each step claimed by compare-and-set).
//!
//! **Keeps** invariant C (no drift: recounts repair and report), a
//! deposed leader writes nothing (every write of a pass carries the lease
//! as a fence), and an alert is never lost nor written twice.

mod background;
mod capacity;
mod reconcile;
mod stats;
mod vms;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use background::{BACKGROUND_LEASE, BackgroundConfig, run_background};
pub use capacity::CapacityTick;
pub use reconcile::HealthMonitor;
pub use stats::{
    ClusterStats, ClusterSummary, DEFAULT_ZONE, WorkerFilter, WorkerSessions, ZoneStats,
};
pub use webhooks::{DeliveryReport, PURGED_PER_STEP, SendResult, WebhookSender, validate_secret};

use super::exams::Exams;
use super::fleet::Fleet;
use super::placement::Placement;
use super::shared::Shared;
use crate::ids::WorkerId;
use crate::scale::ScaleHook;
use crate::time::Timestamp;

/// The operations wing (see the module docs); reached through
/// `ClusterService::operations`.
#[derive(Debug)]
pub struct Operations {
    shared: Arc<Shared>,
    placement: Arc<Placement>,
    fleet: Arc<Fleet>,
    exams: Arc<Exams>,
    /// When the migration suspension this replica reported began (its
    /// first pass holding migration back), while it lasts.
    suspension: Mutex<Option<Timestamp>>,
    /// When this replica last alerted about each worker's orphaned
    /// sessions (the reminders' clock).
    orphan_alerts: Mutex<HashMap<WorkerId, Timestamp>>,
    /// What this replica remembers of the leader's pass under way between
    /// its steps (see `reconcile`'s `pass`).
    pass_memory: Mutex<Option<reconcile::PassMemory>>,
    /// Sends the outbox's deliveries when this replica leads.
    webhook_sender: Option<Arc<dyn WebhookSender>>,
    /// Starts and stops workers for capacity on schedule, if configured.
    scale_hook: Option<Arc<dyn ScaleHook>>,
}

impl Operations {
    pub(crate) fn new(
        shared: Arc<Shared>,
        placement: Arc<Placement>,
        fleet: Arc<Fleet>,
        exams: Arc<Exams>,
        webhook_sender: Option<Arc<dyn WebhookSender>>,
        scale_hook: Option<Arc<dyn ScaleHook>>,
    ) -> Self {
        Self {
            shared,
            placement,
            fleet,
            exams,
            suspension: Mutex::default(),
            orphan_alerts: Mutex::default(),
            pass_memory: Mutex::default(),
            webhook_sender,
            scale_hook,
        }
    }

    /// The webhook sender, if deliveries are sent from this replica.
    pub fn webhook_sender(&self) -> Option<&Arc<dyn WebhookSender>> {
        self.webhook_sender.as_ref()
    }
}
