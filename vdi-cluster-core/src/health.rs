//! Availability of a worker, judged from heartbeats on the control plane's
//! clock.
//!
//! Availability is the second axis of a worker's state, independent of the
//! operator's [`AdminPolicy`](crate::policy::AdminPolicy). It is derived, not
//! stored: [`availability`] computes it from the last heartbeat's stamp, the
//! TTL and the hard timeout at a given `now`. Resource pressure (SkyPanelV2's
//! thresholds) is tracked with hysteresis by [`ResourceHealth::update`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Whether a worker can be reached and trusted with new sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Availability {
    /// Registered, never heard from.
    Pending,
    /// Heartbeating within the TTL, resources fine.
    Healthy,
    /// Heartbeating, but a resource threshold is exceeded.
    Unhealthy,
    /// Last heartbeat older than the TTL: takes no new sessions, keeps its
    /// sessions, its slots leave the totals.
    Unreachable,
    /// Last heartbeat older than the hard timeout, or deregistered.
    Offline,
}

impl Availability {
    /// Healthy, i.e. may take new sessions as far as health goes.
    pub fn is_healthy(self) -> bool {
        self == Self::Healthy
    }

    /// Heard from within the TTL (healthy or under resource pressure): its
    /// existing sessions are served.
    pub fn is_reachable(self) -> bool {
        matches!(self, Self::Healthy | Self::Unhealthy)
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Unreachable => "unreachable",
            Self::Offline => "offline",
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Resource thresholds above which a worker is unhealthy (SkyPanelV2's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceThresholds {
    /// CPU usage percent (default 90).
    pub cpu_percent: f64,
    /// Memory usage percent (default 95).
    pub memory_percent: f64,
    /// Disk usage percent (default 90).
    pub disk_percent: f64,
    /// Consecutive clear heartbeats needed to recover (default 2).
    pub recovery_heartbeats: u32,
}

impl Default for ResourceThresholds {
    fn default() -> Self {
        Self {
            cpu_percent: 90.0,
            memory_percent: 95.0,
            disk_percent: 90.0,
            recovery_heartbeats: 2,
        }
    }
}

/// Resource usage a heartbeat may carry, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceUsage {
    /// CPU usage percent.
    pub cpu_percent: Option<f64>,
    /// Memory usage percent.
    pub memory_percent: Option<f64>,
    /// Disk usage percent.
    pub disk_percent: Option<f64>,
}

impl ResourceUsage {
    /// Which thresholds are exceeded, as a human reason.
    pub fn pressure(&self, t: &ResourceThresholds) -> Option<String> {
        let over: Vec<String> = [
            ("cpu", self.cpu_percent, t.cpu_percent),
            ("memory", self.memory_percent, t.memory_percent),
            ("disk", self.disk_percent, t.disk_percent),
        ]
        .into_iter()
        .filter_map(|(name, value, limit)| {
            value
                .filter(|v| *v > limit)
                .map(|v| format!("{name} {v:.1}% > {limit}%"))
        })
        .collect();
        (!over.is_empty()).then(|| over.join(", "))
    }
}

/// Resource health with hysteresis, stored on the worker record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceHealth {
    /// Why the worker is under pressure, if it is.
    pub pressure: Option<String>,
    /// Consecutive heartbeats with every metric under its threshold since
    /// the pressure was last seen.
    pub clear_streak: u32,
}

impl ResourceHealth {
    /// Whether the worker counts as unhealthy.
    pub fn is_unhealthy(&self) -> bool {
        self.pressure.is_some()
    }

    /// Folds one heartbeat's usage in: pressure is raised at once and
    /// cleared only after `recovery_heartbeats` clear heartbeats in a row.
    pub fn update(&self, usage: &ResourceUsage, t: &ResourceThresholds) -> ResourceHealth {
        match usage.pressure(t) {
            Some(reason) => ResourceHealth {
                pressure: Some(reason),
                clear_streak: 0,
            },
            None => match &self.pressure {
                None => ResourceHealth::default(),
                Some(reason) => {
                    let streak = self.clear_streak + 1;
                    if streak >= t.recovery_heartbeats {
                        ResourceHealth::default()
                    } else {
                        ResourceHealth {
                            pressure: Some(reason.clone()),
                            clear_streak: streak,
                        }
                    }
                }
            },
        }
    }
}

/// Timing of availability judgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// `WORKER_HEARTBEAT_TTL_SEC` (default 120 s): older → unreachable.
    pub heartbeat_ttl: Duration,
    /// Hard timeout (default 600 s): older → offline.
    pub offline_after: Duration,
    /// Grace origin: heartbeats are judged as if none were older than this
    /// instant (the control plane's start), so a restarted control plane does
    /// not condemn workers that could not reach it while it was down.
    pub judge_from: Option<Timestamp>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            heartbeat_ttl: Duration::from_secs(120),
            offline_after: Duration::from_secs(600),
            judge_from: None,
        }
    }
}

/// Availability at `now` of a worker last heard from at `last_heartbeat`.
pub fn availability(
    last_heartbeat: Option<Timestamp>,
    deregistered: bool,
    resource: &ResourceHealth,
    now: Timestamp,
    config: &HealthConfig,
) -> Availability {
    if deregistered {
        return Availability::Offline;
    }
    let Some(last) = last_heartbeat else {
        return Availability::Pending;
    };
    let seen = config.judge_from.map_or(last, |origin| last.max(origin));
    let age = now.since(seen);
    if age > config.offline_after {
        Availability::Offline
    } else if age > config.heartbeat_ttl {
        Availability::Unreachable
    } else if resource.is_unhealthy() {
        Availability::Unhealthy
    } else {
        Availability::Healthy
    }
}

/// Where a heartbeat stands relative to the last one applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOrder {
    /// The first heartbeat of this worker.
    First,
    /// Same boot, higher sequence (or an agent without sequence numbers).
    Newer,
    /// A new boot id: the worker restarted and its old sessions are gone.
    Restarted,
    /// Older or replayed: must not overwrite what is stored.
    Stale,
}

/// The boot id and sequence number a heartbeat carries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatStamp {
    /// Random id the agent picks at start-up.
    pub boot_id: Option<String>,
    /// Increases by one per heartbeat within a boot.
    pub seq: Option<u64>,
}

/// Orders `incoming` against the stored stamp. `retired_boots` lists boot
/// ids the worker has already moved on from: a late heartbeat of an old
/// boot is stale, not a restart.
pub fn order_heartbeat(
    stored: Option<&HeartbeatStamp>,
    retired_boots: &[String],
    incoming: &HeartbeatStamp,
) -> HeartbeatOrder {
    let Some(stored) = stored else {
        return HeartbeatOrder::First;
    };
    match (&stored.boot_id, &incoming.boot_id) {
        (_, Some(boot)) if retired_boots.iter().any(|b| b == boot) => HeartbeatOrder::Stale,
        (Some(old), Some(new)) if old != new => HeartbeatOrder::Restarted,
        (None, Some(_)) => HeartbeatOrder::Newer,
        // An agent that stopped sending a boot id: trust it as before.
        (_, None) => HeartbeatOrder::Newer,
        (Some(_), Some(_)) => match (stored.seq, incoming.seq) {
            (Some(old), Some(new)) if new <= old => HeartbeatOrder::Stale,
            _ => HeartbeatOrder::Newer,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(boot: &str, seq: u64) -> HeartbeatStamp {
        HeartbeatStamp {
            boot_id: Some(boot.into()),
            seq: Some(seq),
        }
    }

    #[test]
    fn availability_by_age() {
        let cfg = HealthConfig::default();
        let ok = ResourceHealth::default();
        let t0 = Timestamp(1_000_000);
        let at = |secs| t0.plus(Duration::from_secs(secs));
        assert_eq!(
            availability(None, false, &ok, t0, &cfg),
            Availability::Pending
        );
        assert_eq!(
            availability(Some(t0), false, &ok, at(120), &cfg),
            Availability::Healthy
        );
        assert_eq!(
            availability(Some(t0), false, &ok, at(121), &cfg),
            Availability::Unreachable
        );
        assert_eq!(
            availability(Some(t0), false, &ok, at(601), &cfg),
            Availability::Offline
        );
        assert_eq!(
            availability(Some(t0), true, &ok, t0, &cfg),
            Availability::Offline
        );
        let grace = HealthConfig {
            judge_from: Some(at(500)),
            ..cfg
        };
        assert_eq!(
            availability(Some(t0), false, &ok, at(601), &grace),
            Availability::Healthy
        );
    }

    #[test]
    fn heartbeat_order() {
        let s = stamp("a", 5);
        assert_eq!(order_heartbeat(None, &[], &s), HeartbeatOrder::First);
        assert_eq!(
            order_heartbeat(Some(&s), &[], &stamp("a", 6)),
            HeartbeatOrder::Newer
        );
        assert_eq!(
            order_heartbeat(Some(&s), &[], &stamp("a", 5)),
            HeartbeatOrder::Stale
        );
        assert_eq!(
            order_heartbeat(Some(&s), &[], &stamp("a", 4)),
            HeartbeatOrder::Stale
        );
        assert_eq!(
            order_heartbeat(Some(&s), &[], &stamp("b", 1)),
            HeartbeatOrder::Restarted
        );
        let retired = vec!["old".to_string()];
        assert_eq!(
            order_heartbeat(Some(&s), &retired, &stamp("old", 99)),
            HeartbeatOrder::Stale
        );
        assert_eq!(
            order_heartbeat(Some(&s), &[], &HeartbeatStamp::default()),
            HeartbeatOrder::Newer
        );
    }

    #[test]
    fn resource_hysteresis() {
        let t = ResourceThresholds::default();
        let hot = ResourceUsage {
            cpu_percent: Some(95.0),
            ..Default::default()
        };
        let cool = ResourceUsage {
            cpu_percent: Some(20.0),
            ..Default::default()
        };
        let h = ResourceHealth::default().update(&hot, &t);
        assert!(h.is_unhealthy());
        assert!(h.pressure.as_deref().unwrap().contains("cpu"));
        let h = h.update(&cool, &t);
        assert!(h.is_unhealthy(), "one clear heartbeat is not enough");
        let h = h.update(&hot, &t).update(&cool, &t);
        assert!(h.is_unhealthy(), "streak restarts");
        assert!(!h.update(&cool, &t).is_unhealthy());
    }
}
