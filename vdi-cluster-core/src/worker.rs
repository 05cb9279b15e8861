//! The worker record, heartbeats applied to it, and the views derived from
//! it at a given instant.
//!
//! A [`WorkerRecord`] is what a backend stores. A heartbeat is folded into it
//! by the pure [`apply_heartbeat`]; a backend writes the result with a
//! compare-and-set on the record's version. A [`WorkerView`] adds what is
//! derived at `now`: availability, slots and the one `status` of the API.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::capacity::{CapacitySpec, MAX_SESSIONS, used_sessions};
use crate::error::ValidationError;
use crate::health::{
    Availability, HealthConfig, HeartbeatOrder, HeartbeatStamp, ResourceHealth, ResourceThresholds,
    ResourceUsage, availability, order_heartbeat,
};
use crate::ids::{SessionKey, WorkerId};
use crate::policy::{AdminPolicy, DrainStatus, Occupancy};
use crate::time::Timestamp;

/// Boot ids remembered per worker to recognise late heartbeats of old boots.
pub const RETIRED_BOOTS_KEPT: usize = 4;
/// Most labels or capabilities a worker may carry.
pub const MAX_TAGS: usize = 32;
/// Longest zone, label key or value, or capability.
pub const MAX_TAG_LEN: usize = 64;
/// Most live session ids one heartbeat may carry.
pub const MAX_LIVE_SESSIONS: usize = 10_000;
/// Longest accepted boot id.
pub const MAX_BOOT_ID_LEN: usize = 128;

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
    if value.is_empty() || value.len() > MAX_TAG_LEN {
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
    /// Checks lengths and the URL; errors name the API field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.name.len() > 200 || self.name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must be at most 200 characters without control characters",
            ));
        }
        if !self.api_base_url.is_empty() {
            let ok_scheme = self.api_base_url.starts_with("http://")
                || self.api_base_url.starts_with("https://");
            if !ok_scheme
                || self.api_base_url.len() > 512
                || self.api_base_url.chars().any(char::is_whitespace)
            {
                return Err(ValidationError::new(
                    "apiBaseUrl",
                    "must be an http:// or https:// URL of at most 512 characters",
                ));
            }
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
}

impl WorkerRecord {
    /// A registered worker that has not heartbeated yet.
    pub fn registered(id: WorkerId, description: WorkerDescription, now: Timestamp) -> Self {
        Self {
            id,
            description,
            capacity: None,
            reported_active: 0,
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
        }
    }

    /// Slots by the capacity formula (zero before the first heartbeat).
    pub fn max_sessions(&self) -> u32 {
        self.capacity.map_or(0, |c| c.max_sessions())
    }

    /// Whether a reservation may be made on this worker as far as the stored
    /// state goes (policy active, not deregistered). Backends store this next
    /// to [`max_sessions`](Self::max_sessions) and `reported_active` so that
    /// compare-and-reserve can check all three atomically.
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

/// A heartbeat, validated (seed 000's body plus optional fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The worker's code.
    pub worker: WorkerId,
    /// Descriptive fields; empty ones keep what is stored.
    pub description: WorkerDescription,
    /// Capacity figures.
    pub capacity: CapacitySpec,
    /// `activeSessions`.
    pub active_sessions: u32,
    /// Boot id and sequence number.
    pub stamp: HeartbeatStamp,
    /// Ids of the sessions the worker runs, when it reports them.
    pub live_sessions: Option<Vec<SessionKey>>,
    /// Resource usage.
    pub resources: ResourceUsage,
}

impl Heartbeat {
    /// Checks the fields capacity validation does not cover.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.description.validate()?;
        if let Some(boot) = &self.stamp.boot_id
            && (boot.is_empty()
                || boot.len() > MAX_BOOT_ID_LEN
                || boot.chars().any(char::is_control))
        {
            return Err(ValidationError::new(
                "bootId",
                format!("must be 1 to {MAX_BOOT_ID_LEN} characters without control characters"),
            ));
        }
        if self.active_sessions > MAX_SESSIONS {
            return Err(ValidationError::new(
                "activeSessions",
                format!("must be at most {MAX_SESSIONS}"),
            ));
        }
        if self
            .live_sessions
            .as_ref()
            .is_some_and(|l| l.len() > MAX_LIVE_SESSIONS)
        {
            return Err(ValidationError::new(
                "liveSessions",
                format!("at most {MAX_LIVE_SESSIONS} entries"),
            ));
        }
        for (field, value) in [
            ("cpuPercent", self.resources.cpu_percent),
            ("memoryPercent", self.resources.memory_percent),
            ("diskPercent", self.resources.disk_percent),
        ] {
            if let Some(v) = value
                && (!v.is_finite() || !(0.0..=100.0).contains(&v))
            {
                return Err(ValidationError::new(
                    field,
                    "must be a percentage from 0 to 100",
                ));
            }
        }
        Ok(())
    }
}

/// The outcome of folding a heartbeat into a record.
#[derive(Debug, Clone, PartialEq)]
pub enum HeartbeatUpdate {
    /// Write this record.
    Apply {
        /// The new record.
        record: Box<WorkerRecord>,
        /// How the heartbeat relates to the previous one.
        order: HeartbeatOrder,
    },
    /// Older or replayed: keep the stored record.
    Stale,
}

/// Folds `hb`, received at `now`, into `existing` (or a new record).
pub fn apply_heartbeat(
    existing: Option<&WorkerRecord>,
    hb: &Heartbeat,
    now: Timestamp,
    thresholds: &ResourceThresholds,
) -> HeartbeatUpdate {
    let order = order_heartbeat(
        existing.and_then(|r| r.stamp.as_ref()),
        existing.map_or(&[][..], |r| &r.retired_boots),
        &hb.stamp,
    );
    if order == HeartbeatOrder::Stale {
        return HeartbeatUpdate::Stale;
    }
    let mut record = existing.cloned().unwrap_or_else(|| {
        WorkerRecord::registered(hb.worker.clone(), WorkerDescription::default(), now)
    });
    merge_description(&mut record.description, &hb.description);
    if order == HeartbeatOrder::Restarted
        && let Some(old) = record.boot_id().map(str::to_owned)
    {
        record.retired_boots.push(old);
        let excess = record
            .retired_boots
            .len()
            .saturating_sub(RETIRED_BOOTS_KEPT);
        record.retired_boots.drain(..excess);
    }
    if matches!(order, HeartbeatOrder::First | HeartbeatOrder::Restarted)
        || record.boot_seen_at.is_none()
    {
        record.boot_seen_at = Some(now);
    }
    record.capacity = Some(hb.capacity);
    record.reported_active = hb.active_sessions;
    record.stamp = Some(hb.stamp.clone());
    record.last_heartbeat_at = Some(now);
    record.deregistered_at = None;
    record.resource_health = record.resource_health.update(&hb.resources, thresholds);
    record.resources = hb.resources;
    if hb.live_sessions.is_some() || order == HeartbeatOrder::Restarted {
        record.live_sessions = hb.live_sessions.clone();
    }
    HeartbeatUpdate::Apply {
        record: Box::new(record),
        order,
    }
}

fn merge_description(stored: &mut WorkerDescription, incoming: &WorkerDescription) {
    if !incoming.name.is_empty() {
        stored.name.clone_from(&incoming.name);
    }
    if !incoming.api_base_url.is_empty() {
        stored.api_base_url.clone_from(&incoming.api_base_url);
    }
    if incoming.zone.is_some() {
        stored.zone.clone_from(&incoming.zone);
    }
    if !incoming.labels.is_empty() {
        stored.labels.clone_from(&incoming.labels);
    }
    if !incoming.capabilities.is_empty() {
        stored.capabilities.clone_from(&incoming.capabilities);
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
    /// `max(reportedActive, dispatched)`; for an offline worker, whose last
    /// report is stale, `dispatched` alone.
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
        let reported = if availability == Availability::Offline {
            0
        } else {
            record.reported_active
        };
        let used = used_sessions(reported, dispatched);
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
    use crate::capacity::CapacityInput;

    fn hb(boot: &str, seq: u64, active: u32) -> Heartbeat {
        Heartbeat {
            worker: WorkerId::parse("code", "w1").unwrap(),
            description: WorkerDescription {
                name: "W1".into(),
                ..Default::default()
            },
            capacity: CapacitySpec::new(CapacityInput {
                total_cpu_cores: 8.0,
                total_memory_mb: 12288,
                reserved_cpu_cores: 1.0,
                reserved_memory_mb: 1024,
                vm_cpu_cores: 1.5,
                vm_memory_mb: 2048,
            })
            .unwrap(),
            active_sessions: active,
            stamp: HeartbeatStamp {
                boot_id: Some(boot.into()),
                seq: Some(seq),
            },
            live_sessions: None,
            resources: ResourceUsage::default(),
        }
    }

    fn apply(existing: Option<&WorkerRecord>, h: &Heartbeat) -> HeartbeatUpdate {
        apply_heartbeat(existing, h, Timestamp(1000), &ResourceThresholds::default())
    }

    #[test]
    fn replayed_heartbeat_never_wins() {
        let HeartbeatUpdate::Apply { record, .. } = apply(None, &hb("a", 2, 3)) else {
            panic!("first heartbeat applies")
        };
        assert_eq!(apply(Some(&record), &hb("a", 1, 0)), HeartbeatUpdate::Stale);
        let HeartbeatUpdate::Apply { record: r2, order } = apply(Some(&record), &hb("b", 1, 0))
        else {
            panic!("restart applies")
        };
        assert_eq!(order, HeartbeatOrder::Restarted);
        assert_eq!(r2.retired_boots, vec!["a".to_string()]);
        assert_eq!(apply(Some(&r2), &hb("a", 9, 3)), HeartbeatUpdate::Stale);
    }

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
