//! The fleet wing: what the workers are and may do.
//!
//! A worker's heartbeat enters at [`Fleet::heartbeat`] (`heartbeat`:
//! registration, the report's compare-and-set, the answer with the
//! worker's policy and next interval), whose report of live sessions is
//! the truth the records are repaired toward (`repair`: adopt, confirm,
//! stop a duplicate; `lost`: after a restart, release in the heartbeat's
//! own compare-and-set what the new boot no longer runs). `assignment`
//! registers and joins workers under
//! codes the control plane assigns, `credentials` holds join, rotation,
//! revocation and reset of a worker's own credential, and `admin` the
//! operators' drain, activate and disable. `freeze` checks every change
//! that takes a worker out (drain, disable, removal, a credential revoked
//! or reset, an agent upgrade cleared by `upgrade`) against the exam
//! calendar, `maintenance` answers when
//! workers may be taken out for a while, and `scheduled` holds drains
//! scheduled for a time (at the start of a maintenance window), which the
//! leader carries out.
//!
//! **Owns** the tally of repairs made by heartbeats since the previous
//! reconcile pass (reported by that pass), and a short memory of workers'
//! credentials (`credential_cache`: acceptances only, for
//! [`ServiceConfig::credential_cache`](crate::ServiceConfig::credential_cache)).
//!
//! **Writes** through [`Registry`](crate::store::Registry) (worker records
//! by compare-and-set, with their outbox entries through
//! [`Outbox`](crate::outbox::Outbox)), [`Credentials`](crate::store::Credentials),
//! [`DispatchStore::adopt`](crate::store::DispatchStore::adopt),
//! [`Outbox::put_worker_releasing_lost`](crate::outbox::Outbox::put_worker_releasing_lost),
//! [`ScheduledActions`](crate::scheduled::ScheduledActions) (by
//! compare-and-set on each action's version) and the [`AuditLog`](crate::store::AuditLog).
//!
//! **Keeps** the heartbeat order (an older or replayed report never
//! overwrites a newer one), the fleet as the truth about what runs (a
//! worker that answers is never failed: its lost sessions free their
//! slots with the heartbeat that proves them lost, once), drain
//! and disable excluding reservations (a transition to an empty state is
//! written with the dispatched count checked), and one credential per role.

mod admin;
mod assignment;
mod credential_cache;
mod credentials;
mod freeze;
mod heartbeat;
mod lost;
mod maintenance;
mod repair;
mod scheduled;
mod upgrade;

use std::sync::Arc;

pub use crate::exam::FrozenChange;
pub use crate::service::shared::reason::MAX_REASON_CHARS;
pub use admin::{AdminOutcome, DrainInfo};
pub use assignment::{AssignedJoin, MAX_REASON_LEN};
pub use credentials::{JoinOutcome, Joined, RotateOutcome};
pub use freeze::FreezeOverride;
pub use heartbeat::HeartbeatAck;
pub use maintenance::{
    DEFAULT_MAINTENANCE_RANGE, MAX_MAINTENANCE_GROUP, MAX_MAINTENANCE_RANGE, MIN_MAINTENANCE,
    MaintenancePlan, MaintenanceQuery,
};
pub use repair::FleetRepair;
pub use scheduled::{DrainAt, MAX_SCHEDULED_LISTED};

use super::placement::Placement;
use super::shared::Shared;
use crate::error::Result;
use crate::health::HealthConfig;
use crate::ids::WorkerId;
use crate::worker::WorkerView;
use repair::FleetTally;
pub(crate) use repair::{Placed, Report, Source};

/// Compare-and-set attempts of a worker record's write (a heartbeat, a
/// lost session's release, a credential's or a scheduled drain's change)
/// before giving up with [`Error::Conflict`](crate::Error::Conflict).
pub(crate) const CAS_ATTEMPTS: usize = 8;

/// The fleet wing (see the module docs); reached through
/// `ClusterService::fleet`.
#[derive(Debug)]
pub struct Fleet {
    shared: Arc<Shared>,
    /// Its writes change what placement may rank: it drops the snapshot.
    placement: Arc<Placement>,
    /// Repairs made by heartbeats since this replica's previous pass.
    tally: FleetTally,
    /// Workers' credentials as this replica last read them, for
    /// `credential_cache` (see `credential_cache`).
    credentials: credential_cache::CredentialCache,
}

impl Fleet {
    pub(crate) fn new(shared: Arc<Shared>, placement: Arc<Placement>) -> Self {
        Self {
            shared,
            placement,
            tally: FleetTally::default(),
            credentials: credential_cache::CredentialCache::default(),
        }
    }

    /// Every worker as seen now, read fresh from the backend.
    pub async fn worker_views(&self) -> Result<Vec<WorkerView>> {
        self.shared.worker_views().await
    }

    /// One worker as seen now.
    pub async fn worker_view(&self, id: &WorkerId) -> Result<WorkerView> {
        self.shared.worker_view(id).await
    }

    /// Health timing in force, with the restart grace origin.
    pub fn health_config(&self) -> HealthConfig {
        self.shared.health_config()
    }

    /// Repairs made by heartbeats since the previous call: adopted,
    /// reservations confirmed, duplicates stopped (reconcile's report).
    pub(crate) fn take_tally(&self) -> (u32, u32, u32) {
        self.tally.take()
    }

    /// Sessions released by heartbeats since the previous call, as lost to
    /// a restart and as gone since their adoption (reconcile's report).
    pub(crate) fn take_released_tally(&self) -> (u32, u32) {
        self.tally.take_released()
    }
}
