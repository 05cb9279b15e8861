//! A [`Heartbeat`], validated, and [`apply_heartbeat`]: folding it into a
//! stored record.

use std::collections::BTreeMap;

use super::{
    HostInfo, MAX_BOOT_ID_LEN, MAX_CONCURRENT_STARTS, MAX_LIVE_SESSIONS, PoolReport,
    RETIRED_BOOTS_KEPT, WorkerDescription, WorkerRecord,
};
use crate::capacity::{CapacitySpec, MAX_SESSIONS};
use crate::health::{
    HeartbeatOrder, HeartbeatStamp, ResourceThresholds, ResourceUsage, order_heartbeat,
};
use crate::ids::{SessionKey, WorkerId};
use crate::time::Timestamp;
use crate::validation::ValidationError;

/// A heartbeat, validated (the exam platform's body plus optional fields).
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
    /// Connection details the worker sent with some of its live sessions
    /// (its allocate answer), used when a session is adopted. Not stored
    /// with the worker record.
    pub live_details: BTreeMap<SessionKey, serde_json::Value>,
    /// Resource usage.
    pub resources: ResourceUsage,
    /// Host metadata; fields left out keep what is stored.
    pub host: HostInfo,
    /// The worker's prewarm pool per exam; a heartbeat without one reports
    /// an empty pool.
    pub prewarm_pool: PoolReport,
    /// `maxConcurrentStarts`: how many desktops the worker may be starting
    /// at once, as its agent is configured; `None`: derived from its slots
    /// ([`default_concurrency`](crate::pacing::default_concurrency)).
    pub max_concurrent_starts: Option<u32>,
}

impl Heartbeat {
    /// Checks the fields capacity validation does not cover.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.description.validate()?;
        self.host.validate()?;
        self.prewarm_pool.validate()?;
        if self
            .max_concurrent_starts
            .is_some_and(|n| n == 0 || n > MAX_CONCURRENT_STARTS)
        {
            return Err(ValidationError::new(
                "maxConcurrentStarts",
                format!("must be 1 to {MAX_CONCURRENT_STARTS}"),
            ));
        }
        if let Some(boot) = &self.stamp.boot_id
            && (boot.is_empty()
                || boot.chars().count() > MAX_BOOT_ID_LEN
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
        if self.live_details.len() > MAX_LIVE_SESSIONS {
            return Err(ValidationError::new(
                "liveSessions",
                format!("at most {MAX_LIVE_SESSIONS} entries with a session"),
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
    record.deregister_reason = None;
    record.host = record.host.merged(&hb.host);
    record.resource_health = record.resource_health.update(&hb.resources, thresholds);
    record.resources = hb.resources;
    record.prewarm_pool = hb.prewarm_pool.clone();
    record.max_concurrent_starts = hb.max_concurrent_starts;
    if hb.live_sessions.is_some() || order == HeartbeatOrder::Restarted {
        record.live_sessions = hb.live_sessions.clone();
    }
    HeartbeatUpdate::Apply {
        record: Box::new(record),
        order,
    }
}

/// Sessions `hb`'s worker runs that no dispatch on it accounts for, the
/// [`WorkerRecord::unrecorded`] its record is written with.
///
/// With a list of live sessions: the listed ones for which `placed` (is
/// there a dispatch of this session on this worker, as read after the
/// worker's record) is false, plus any `activeSessions` beyond the list.
/// Without a list: `activeSessions` beyond the `dispatched` count, so that
/// `dispatched + unrecorded` is `max(activeSessions, dispatched)` at the
/// instant of the report.
pub fn unrecorded(hb: &Heartbeat, placed: impl Fn(&SessionKey) -> bool, dispatched: u32) -> u32 {
    let Some(live) = &hb.live_sessions else {
        return hb.active_sessions.saturating_sub(dispatched);
    };
    let listed = u32::try_from(live.len()).unwrap_or(u32::MAX);
    let unplaced = live.iter().filter(|k| !placed(k)).count();
    u32::try_from(unplaced)
        .unwrap_or(u32::MAX)
        .saturating_add(hb.active_sessions.saturating_sub(listed))
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
            live_details: BTreeMap::new(),
            prewarm_pool: PoolReport::default(),
            max_concurrent_starts: None,
            resources: ResourceUsage::default(),
            host: HostInfo::default(),
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
    fn unrecorded_counts_what_no_dispatch_on_the_worker_accounts_for() {
        let a = SessionKey::parse("exam", "a").unwrap();
        let b = SessionKey::parse("exam", "b").unwrap();
        // Without a list: activeSessions beyond the dispatched count.
        let mut report = hb("b1", 1, 3);
        assert_eq!(unrecorded(&report, |_| false, 1), 2);
        assert_eq!(unrecorded(&report, |_| false, 5), 0);
        // With one: the listed sessions without a dispatch here, whatever
        // the dispatched count (reservations not started yet count there).
        report.live_sessions = Some(vec![a.clone(), b.clone()]);
        report.active_sessions = 2;
        assert_eq!(unrecorded(&report, |k| *k == a, 5), 1);
        assert_eq!(unrecorded(&report, |_| true, 0), 0);
        // A list shorter than activeSessions: the rest is unrecorded too.
        report.active_sessions = 4;
        assert_eq!(unrecorded(&report, |_| true, 0), 2);
    }
}
