//! What a backend stores for a worker: its [`WorkerRecord`] with the
//! [`WorkerDescription`] it gave, and the [`WorkerSnapshot`] read back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{HostInfo, MAX_TAG_LEN, MAX_TAGS, PoolReport};
use crate::capacity::CapacitySpec;
use crate::health::{
    Availability, HealthConfig, HeartbeatStamp, ResourceHealth, ResourceUsage, availability,
};
use crate::ids::{SessionKey, WorkerId};
use crate::policy::AdminPolicy;
use crate::time::Timestamp;
use crate::validation::ValidationError;

/// Descriptive fields of a worker: who it is and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerDescription {
    /// Display name (`Worker Node 2`).
    pub name: String,
    /// Base URL the control plane calls (`WORKER_API_BASE_URL`).
    pub api_base_url: String,
    /// Zone, for constraints and per-zone statistics.
    pub zone: Option<String>,
    /// Free-form labels, matched by constraints.
    pub labels: BTreeMap<String, String>,
    /// Capabilities, required by constraints (`gpu`, `firecracker`).
    pub capabilities: BTreeSet<String>,
}

fn check_tag(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().count() > MAX_TAG_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_TAG_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl WorkerDescription {
    /// Checks lengths and the URL (empty, or an absolute `http(s)` URL with
    /// a host: [`api_base_url_host`](super::api_base_url_host)); errors name
    /// the API field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.name.chars().count() > 200 || self.name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must be at most 200 characters without control characters",
            ));
        }
        if !self.api_base_url.is_empty()
            && (self.api_base_url.chars().count() > 512
                || super::api_base_url_host(&self.api_base_url).is_none())
        {
            return Err(ValidationError::new(
                "apiBaseUrl",
                "must be an absolute http:// or https:// URL with a host, of at most 512 characters",
            ));
        }
        if let Some(zone) = &self.zone {
            check_tag("zone", zone)?;
        }
        if self.labels.len() > MAX_TAGS {
            return Err(ValidationError::new(
                "labels",
                format!("at most {MAX_TAGS} labels"),
            ));
        }
        for (k, v) in &self.labels {
            check_tag("labels", k)?;
            check_tag("labels", v)?;
        }
        if self.capabilities.len() > MAX_TAGS {
            return Err(ValidationError::new(
                "capabilities",
                format!("at most {MAX_TAGS} capabilities"),
            ));
        }
        for c in &self.capabilities {
            check_tag("capabilities", c)?;
        }
        Ok(())
    }
}

/// What a backend stores for one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRecord {
    /// The worker's code.
    pub id: WorkerId,
    /// Name, URL, zone, labels, capabilities.
    pub description: WorkerDescription,
    /// Capacity from the latest heartbeat (none before the first).
    pub capacity: Option<CapacitySpec>,
    /// `activeSessions` from the latest heartbeat.
    pub reported_active: u32,
    /// Sessions the worker runs that no dispatch on it accounts for: those
    /// its latest report listed without a dispatch here (or, from a worker
    /// that lists none, `activeSessions` beyond the dispatched count), plus
    /// one for every removal since that held its slot
    /// ([`DispatchStore::undo`](crate::store::DispatchStore::undo),
    /// [`release`](crate::store::DispatchStore::release)). Used slots are
    /// `dispatched + unrecorded`, so a released slot is free at once.
    ///
    /// Backends store it beside the record, in the field compare-and-reserve
    /// reads and a held removal increments, not inside the serialised
    /// record.
    #[serde(skip)]
    pub unrecorded: u32,
    /// Operator policy.
    pub policy: AdminPolicy,
    /// Boot id and sequence of the latest applied heartbeat.
    pub stamp: Option<HeartbeatStamp>,
    /// Boot ids the worker has moved on from, newest last.
    pub retired_boots: Vec<String>,
    /// When the control plane first heard from the current boot.
    pub boot_seen_at: Option<Timestamp>,
    /// When the latest heartbeat arrived, on the control plane's clock.
    pub last_heartbeat_at: Option<Timestamp>,
    /// When the worker was first registered.
    pub registered_at: Timestamp,
    /// When the worker deregistered (it is then offline).
    pub deregistered_at: Option<Timestamp>,
    /// Resource usage from the latest heartbeat.
    pub resources: ResourceUsage,
    /// Resource pressure with hysteresis.
    pub resource_health: ResourceHealth,
    /// Live session ids from the latest heartbeat that carried them.
    pub live_sessions: Option<Vec<SessionKey>>,
    /// Host name, disk, OS and agent version, from heartbeats.
    #[serde(default, skip_serializing_if = "HostInfo::is_empty")]
    pub host: HostInfo,
    /// Why the worker deregistered, as it said (as minicloud), while it is
    /// deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregister_reason: Option<String>,
    /// The prewarm pool per exam from the latest heartbeat, written with
    /// the record in the heartbeat's compare-and-set.
    #[serde(default, skip_serializing_if = "PoolReport::is_empty")]
    pub prewarm_pool: PoolReport,
    /// The start concurrency the worker's agent is configured with, from
    /// the latest heartbeat (`None`: derived from its slots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_starts: Option<u32>,
}

impl WorkerRecord {
    /// A registered worker that has not heartbeated yet.
    pub fn registered(id: WorkerId, description: WorkerDescription, now: Timestamp) -> Self {
        Self {
            id,
            description,
            capacity: None,
            reported_active: 0,
            unrecorded: 0,
            policy: AdminPolicy::Active,
            stamp: None,
            retired_boots: Vec::new(),
            boot_seen_at: None,
            last_heartbeat_at: None,
            registered_at: now,
            deregistered_at: None,
            resources: ResourceUsage::default(),
            resource_health: ResourceHealth::default(),
            live_sessions: None,
            host: HostInfo::default(),
            deregister_reason: None,
            prewarm_pool: PoolReport::default(),
            max_concurrent_starts: None,
        }
    }

    /// The configured start concurrency: the agent's, or
    /// [`default_concurrency`](crate::pacing::default_concurrency) of its
    /// slots.
    pub fn start_concurrency(&self) -> u32 {
        self.max_concurrent_starts
            .unwrap_or_else(|| crate::pacing::default_concurrency(self.max_sessions()))
    }

    /// Slots by the capacity formula (zero before the first heartbeat).
    pub fn max_sessions(&self) -> u32 {
        self.capacity.map_or(0, |c| c.max_sessions())
    }

    /// Whether a reservation may be made on this worker as far as the stored
    /// state goes (policy active, not deregistered). Backends store this next
    /// to [`max_sessions`](Self::max_sessions) and
    /// [`unrecorded`](Self::unrecorded) so that compare-and-reserve can check
    /// all three atomically.
    pub fn accepting(&self) -> bool {
        self.policy.accepts_new_sessions() && self.deregistered_at.is_none()
    }

    /// Boot id of the latest heartbeat.
    pub fn boot_id(&self) -> Option<&str> {
        self.stamp.as_ref().and_then(|s| s.boot_id.as_deref())
    }

    /// Availability at `now`.
    pub fn availability(&self, now: Timestamp, config: &HealthConfig) -> Availability {
        availability(
            self.last_heartbeat_at,
            self.deregistered_at.is_some(),
            &self.resource_health,
            now,
            config,
        )
    }
}

/// A stored worker as a backend returns it: record, version and the control
/// plane's own count of sessions dispatched to it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSnapshot {
    /// The record.
    pub record: WorkerRecord,
    /// Version for compare-and-set; bumped by every write of the record.
    pub version: u64,
    /// Dispatch records (reserved, active or orphaned) on this worker.
    pub dispatched: u32,
}
