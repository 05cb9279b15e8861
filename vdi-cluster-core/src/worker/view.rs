//! A [`WorkerView`]: a stored worker as seen at one instant — its
//! availability, slots and the one [`WorkerStatus`] of the API.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use super::{WorkerRecord, WorkerSnapshot};
use crate::capacity::used_sessions;
use crate::health::{Availability, HealthConfig};
use crate::ids::WorkerId;
use crate::policy::{AdminPolicy, DrainStatus, Occupancy};
use crate::time::Timestamp;
use crate::validation::ValidationError;

/// The one `status` of the API, by precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkerStatus {
    /// Operator disabled it.
    Disabled,
    /// Past the hard timeout, or deregistered.
    Offline,
    /// Past the heartbeat TTL.
    Unreachable,
    /// A resource threshold is exceeded.
    Unhealthy,
    /// Draining.
    Draining,
    /// Drained.
    Drained,
    /// Never heard from.
    Pending,
    /// Healthy and taking sessions.
    Active,
}

impl WorkerStatus {
    /// Precedence: `disabled`, `offline`, `unreachable`, `unhealthy`,
    /// `draining`/`drained`, `pending`, `active`.
    pub fn of(availability: Availability, policy: AdminPolicy) -> Self {
        match (policy, availability) {
            (AdminPolicy::Disabled { .. }, _) => Self::Disabled,
            (_, Availability::Offline) => Self::Offline,
            (_, Availability::Unreachable) => Self::Unreachable,
            (_, Availability::Unhealthy) => Self::Unhealthy,
            (AdminPolicy::Draining { .. }, _) => Self::Draining,
            (AdminPolicy::Drained, _) => Self::Drained,
            (_, Availability::Pending) => Self::Pending,
            (AdminPolicy::Active, Availability::Healthy) => Self::Active,
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Offline => "offline",
            Self::Unreachable => "unreachable",
            Self::Unhealthy => "unhealthy",
            Self::Draining => "draining",
            Self::Drained => "drained",
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }

    /// Parses a lowercase name (list filters).
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        const ALL: [WorkerStatus; 8] = [
            WorkerStatus::Disabled,
            WorkerStatus::Offline,
            WorkerStatus::Unreachable,
            WorkerStatus::Unhealthy,
            WorkerStatus::Draining,
            WorkerStatus::Drained,
            WorkerStatus::Pending,
            WorkerStatus::Active,
        ];
        ALL.into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<_> = ALL.iter().map(|s| s.name()).collect();
                ValidationError::new(field, format!("must be one of {}", names.join(", ")))
            })
    }
}

impl fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A worker as the scheduler and the API see it at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    /// The stored record.
    pub record: WorkerRecord,
    /// Record version.
    pub version: u64,
    /// Sessions the control plane dispatched to it.
    pub dispatched: u32,
    /// Availability at the instant of the view.
    pub availability: Availability,
    /// Slots by the capacity formula.
    pub max_sessions: u32,
    /// `dispatched + unrecorded` ([`WorkerRecord::unrecorded`]); for an
    /// offline worker, whose last report is stale, `dispatched` alone.
    pub used_sessions: u32,
    /// `max_sessions - used_sessions`, never negative.
    pub available_sessions: u32,
    /// The API's single status.
    pub status: WorkerStatus,
    pub(crate) tiebreak: u64,
}

impl WorkerView {
    /// Derives the view of `snapshot` at `now`.
    pub fn new(snapshot: WorkerSnapshot, now: Timestamp, health: &HealthConfig) -> Self {
        let WorkerSnapshot {
            record,
            version,
            dispatched,
        } = snapshot;
        let availability = record.availability(now, health);
        let max_sessions = record.max_sessions();
        // An offline worker's last report is no longer evidence of anything;
        // only the control plane's own count still stands.
        let unrecorded = if availability == Availability::Offline {
            0
        } else {
            record.unrecorded
        };
        let used = used_sessions(dispatched, unrecorded);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        record.id.hash(&mut hasher);
        Self {
            status: WorkerStatus::of(availability, record.policy),
            availability,
            max_sessions,
            used_sessions: used,
            available_sessions: max_sessions.saturating_sub(used),
            dispatched,
            version,
            tiebreak: hasher.finish(),
            record,
        }
    }

    /// The worker's code.
    pub fn id(&self) -> &WorkerId {
        &self.record.id
    }

    /// Healthy, policy active and at least one slot free.
    pub fn is_schedulable(&self) -> bool {
        self.availability.is_healthy() && self.record.accepting() && self.available_sessions >= 1
    }

    /// Whether its slots count in the cluster totals: healthy and active.
    pub fn counts_in_totals(&self) -> bool {
        self.availability.is_healthy() && self.record.accepting()
    }

    /// Occupancy for drain decisions.
    pub fn occupancy(&self) -> Occupancy {
        Occupancy {
            reported_active: self.record.reported_active,
            dispatched: self.dispatched,
        }
    }

    /// `drainStatus` of the API.
    pub fn drain_status(&self) -> DrainStatus {
        self.record.policy.drain_status()
    }

    /// A human sentence explaining the status.
    pub fn reason(&self, now: Timestamp) -> String {
        let seen = |r: &WorkerRecord| {
            r.last_heartbeat_at
                .map(|t| format!("last heartbeat {}s ago", now.since(t).as_secs()))
                .unwrap_or_else(|| "never heard from".into())
        };
        match self.status {
            WorkerStatus::Disabled => match self.record.policy {
                AdminPolicy::Disabled { forced: true } => {
                    "disabled by force; its sessions were dropped".into()
                }
                _ => "disabled by an operator".into(),
            },
            WorkerStatus::Offline if self.record.deregistered_at.is_some() => "deregistered".into(),
            WorkerStatus::Offline => format!("offline: {}", seen(&self.record)),
            WorkerStatus::Unreachable => format!("unreachable: {}", seen(&self.record)),
            WorkerStatus::Unhealthy => format!(
                "unhealthy: {}",
                self.record
                    .resource_health
                    .pressure
                    .as_deref()
                    .unwrap_or("resource pressure")
            ),
            WorkerStatus::Draining => format!(
                "draining: {} session(s) remain",
                self.occupancy().sessions()
            ),
            WorkerStatus::Drained => "drained: no sessions remain".into(),
            WorkerStatus::Pending => "registered, waiting for the first heartbeat".into(),
            WorkerStatus::Active if self.available_sessions == 0 => "active, full".into(),
            WorkerStatus::Active => format!("active, {} slot(s) free", self.available_sessions),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_precedence() {
        use Availability as A;
        assert_eq!(
            WorkerStatus::of(A::Offline, AdminPolicy::Disabled { forced: false }),
            WorkerStatus::Disabled
        );
        assert_eq!(
            WorkerStatus::of(A::Unreachable, AdminPolicy::Drained),
            WorkerStatus::Unreachable
        );
        assert_eq!(
            WorkerStatus::of(A::Pending, AdminPolicy::Draining { deadline: None }),
            WorkerStatus::Draining
        );
        assert_eq!(
            WorkerStatus::of(A::Healthy, AdminPolicy::Active),
            WorkerStatus::Active
        );
        assert_eq!(
            WorkerStatus::parse("status", "DRAINED").unwrap(),
            WorkerStatus::Drained
        );
        assert_eq!(
            WorkerStatus::parse("status", "x").unwrap_err().field,
            "status"
        );
    }
}
