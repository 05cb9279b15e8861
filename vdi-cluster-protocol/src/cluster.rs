//! Control plane → operators: cluster-wide views — the exam platform's summary,
//! statistics with zones, the session distribution and the audit trail.
//! (The reconcile report is in [`reconcile`](crate::reconcile), events in
//! [`events`](crate::events).)
//!
//! | method | path | answer |
//! |---|---|---|
//! | `GET` | `/api/vdi/workers/summary` | [`SummaryJson`] |
//! | `GET` | `/api/vdi/cluster/stats` | [`StatsJson`] |
//! | `GET` | `/api/vdi/cluster/distribution` | [`DistributionJson`] |
//! | `GET` | `/api/vdi/audit` | [`AuditJson`] |
//!
//! Times are milliseconds since the Unix epoch on the control plane's clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::{ClusterStats, ClusterSummary, WorkerSessions, ZoneStats};
use vdi_cluster_core::store::AuditEntry;
use vdi_cluster_core::{Page, Paged};

use crate::page::PageJson;
use crate::sessions::SessionJson;

/// The exam platform's admin summary: `healthyWorkers/totalWorkers`,
/// `totalAvailableSessions/totalMaxSessions`, `totalActiveSessions`, drain
/// counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryJson {
    /// Registered workers (deregistered ones excluded).
    pub total_workers: u32,
    /// Workers heartbeating within the TTL, resources fine.
    pub healthy_workers: u32,
    /// Workers taking new sessions (healthy and active).
    pub schedulable_workers: u32,
    /// Slots of healthy, active workers.
    pub total_max_sessions: u32,
    /// Free slots of healthy, active workers.
    pub total_available_sessions: u32,
    /// Sessions in use across all workers (`dispatched + unrecorded`).
    pub total_active_sessions: u32,
    /// Draining workers.
    pub draining_workers: u32,
    /// Drained workers.
    pub drained_workers: u32,
    /// Disabled workers.
    pub disabled_workers: u32,
    /// Unreachable workers.
    pub unreachable_workers: u32,
    /// Offline workers.
    pub offline_workers: u32,
}

impl From<&ClusterSummary> for SummaryJson {
    fn from(s: &ClusterSummary) -> Self {
        Self {
            total_workers: s.total_workers,
            healthy_workers: s.healthy_workers,
            schedulable_workers: s.schedulable_workers,
            total_max_sessions: s.total_max_sessions,
            total_available_sessions: s.total_available_sessions,
            total_active_sessions: s.total_active_sessions,
            draining_workers: s.draining_workers,
            drained_workers: s.drained_workers,
            disabled_workers: s.disabled_workers,
            unreachable_workers: s.unreachable_workers,
            offline_workers: s.offline_workers,
        }
    }
}

/// One zone's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStatsJson {
    /// Workers in the zone.
    pub workers: u32,
    /// Healthy workers.
    pub healthy_workers: u32,
    /// Slots of healthy, active workers.
    pub max_sessions: u32,
    /// Free slots of healthy, active workers.
    pub available_sessions: u32,
    /// Sessions in use.
    pub active_sessions: u32,
}

impl From<&ZoneStats> for ZoneStatsJson {
    fn from(z: &ZoneStats) -> Self {
        Self {
            workers: z.workers,
            healthy_workers: z.healthy_workers,
            max_sessions: z.max_sessions,
            available_sessions: z.available_sessions,
            active_sessions: z.active_sessions,
        }
    }
}

/// Cluster statistics (Aetherium's `/cluster/stats`): the summary's fields,
/// workers per status, figures per zone (`default` for workers without
/// one), total CPU and memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsJson {
    /// The summary, inline.
    #[serde(flatten)]
    pub summary: SummaryJson,
    /// Workers per status.
    pub by_status: BTreeMap<String, u32>,
    /// Figures per zone.
    pub zones: BTreeMap<String, ZoneStatsJson>,
    /// CPU of all registered workers, cores.
    pub total_cpu_cores: f64,
    /// Memory of all registered workers, MB.
    pub total_memory_mb: u64,
    /// CPU of the sessions in use, cores (slot math: sessions × VM).
    pub used_cpu_cores: f64,
    /// Memory of the sessions in use, MB (slot math).
    pub used_memory_mb: u64,
    /// CPU left for sessions: total less reserved less used, cores.
    pub available_cpu_cores: f64,
    /// Memory left for sessions: total less reserved less used, MB.
    pub available_memory_mb: u64,
    /// Used CPU, percent of the CPU left after reservations.
    pub cpu_usage_percent: f64,
    /// Used memory, percent of the memory left after reservations.
    pub memory_usage_percent: f64,
}

impl From<&ClusterStats> for StatsJson {
    fn from(s: &ClusterStats) -> Self {
        Self {
            summary: SummaryJson::from(&s.summary),
            by_status: s.by_status.clone(),
            zones: s
                .zones
                .iter()
                .map(|(k, z)| (k.clone(), ZoneStatsJson::from(z)))
                .collect(),
            total_cpu_cores: s.total_cpu_cores,
            total_memory_mb: s.total_memory_mb,
            used_cpu_cores: s.usage.used_cpu.as_cores(),
            used_memory_mb: s.usage.used_memory_mb,
            available_cpu_cores: s.usage.available_cpu().as_cores(),
            available_memory_mb: s.usage.available_memory_mb(),
            cpu_usage_percent: s.usage.cpu_percent(),
            memory_usage_percent: s.usage.memory_percent(),
        }
    }
}

/// One worker's sessions in the distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionEntry {
    /// The worker.
    pub code: String,
    /// Its zone.
    pub zone: Option<String>,
    /// Its status.
    pub status: String,
    /// Sessions in use.
    pub used_sessions: u32,
    /// Sessions listed.
    pub session_count: usize,
    /// The sessions (up to `perWorker`).
    pub sessions: Vec<SessionJson>,
}

impl From<&WorkerSessions> for DistributionEntry {
    fn from(w: &WorkerSessions) -> Self {
        let sessions: Vec<SessionJson> = w.sessions.iter().map(SessionJson::from).collect();
        Self {
            code: w.code.to_string(),
            zone: w.zone.clone(),
            status: w.status.name().to_owned(),
            used_sessions: w.used_sessions,
            session_count: sessions.len(),
            sessions,
        }
    }
}

/// Sessions per worker (Aetherium's distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionJson {
    /// Per worker, by code.
    pub distribution: Vec<DistributionEntry>,
    /// Workers listed.
    pub total_workers: usize,
}

impl DistributionJson {
    /// The distribution of `rows`.
    pub fn new(rows: &[WorkerSessions]) -> Self {
        let distribution: Vec<DistributionEntry> =
            rows.iter().map(DistributionEntry::from).collect();
        Self {
            total_workers: distribution.len(),
            distribution,
        }
    }
}

/// One admin action in the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryJson {
    /// When (ms since the epoch).
    pub at: u64,
    /// Who: the JWT `sub`, the kind of credential, or `system`.
    pub actor: String,
    /// What (`drain`, `force-disable`, `reconcile`, …).
    pub action: String,
    /// On what (a worker code, an exam id, a join token id).
    pub target: String,
    /// Details (an object, or null).
    #[schema(value_type = Option<Object>)]
    pub detail: serde_json::Value,
}

impl From<&AuditEntry> for AuditEntryJson {
    fn from(e: &AuditEntry) -> Self {
        Self {
            at: e.at.as_millis(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            detail: e.detail.clone(),
        }
    }
}

/// A page of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditJson {
    /// The page's entries, newest first.
    pub entries: Vec<AuditEntryJson>,
    /// `total` (every entry of the trail), `limit`, `offset`.
    #[serde(flatten)]
    pub page: PageJson,
}

impl AuditJson {
    /// `page` of the trail, whose entries are `paged`.
    pub fn new(paged: &Paged<AuditEntry>, page: Page) -> Self {
        Self {
            entries: paged.items.iter().map(AuditEntryJson::from).collect(),
            page: PageJson::new(page, paged.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::{Timestamp, WorkerId, WorkerStatus};

    use super::*;

    fn w1() -> WorkerId {
        WorkerId::parse("code", "w1").unwrap()
    }

    fn summary() -> ClusterSummary {
        ClusterSummary {
            total_workers: 1,
            healthy_workers: 2,
            schedulable_workers: 3,
            total_max_sessions: 4,
            total_available_sessions: 5,
            total_active_sessions: 6,
            draining_workers: 7,
            drained_workers: 8,
            disabled_workers: 9,
            unreachable_workers: 10,
            offline_workers: 11,
        }
    }

    fn summary_json() -> serde_json::Value {
        json!({
            "totalWorkers": 1, "healthyWorkers": 2, "schedulableWorkers": 3,
            "totalMaxSessions": 4, "totalAvailableSessions": 5, "totalActiveSessions": 6,
            "drainingWorkers": 7, "drainedWorkers": 8, "disabledWorkers": 9,
            "unreachableWorkers": 10, "offlineWorkers": 11,
        })
    }

    #[test]
    fn summary_field_names() {
        assert_eq!(
            serde_json::to_value(SummaryJson::from(&summary())).unwrap(),
            summary_json()
        );
    }

    #[test]
    fn stats_field_names() {
        let stats = ClusterStats {
            summary: summary(),
            by_status: [("active".to_owned(), 1)].into(),
            zones: [(
                "default".to_owned(),
                ZoneStats {
                    workers: 1,
                    healthy_workers: 1,
                    max_sessions: 4,
                    available_sessions: 3,
                    active_sessions: 1,
                },
            )]
            .into(),
            total_cpu_cores: 8.5,
            total_memory_mb: 12288,
            usage: vdi_cluster_core::worker::SlotUsage {
                used_cpu: vdi_cluster_core::Millicores(1500),
                used_memory_mb: 2048,
                usable_cpu: vdi_cluster_core::Millicores(7500),
                usable_memory_mb: 11264,
            },
        };
        let mut expected = summary_json();
        let extra = json!({
            "byStatus": {"active": 1},
            "zones": {"default": {
                "workers": 1, "healthyWorkers": 1, "maxSessions": 4,
                "availableSessions": 3, "activeSessions": 1,
            }},
            "totalCpuCores": 8.5, "totalMemoryMb": 12288,
            "usedCpuCores": 1.5, "usedMemoryMb": 2048,
            "availableCpuCores": 6.0, "availableMemoryMb": 9216,
            "cpuUsagePercent": 20.0, "memoryUsagePercent": 18.1,
        });
        for (k, v) in extra.as_object().unwrap() {
            expected[k] = v.clone();
        }
        assert_eq!(
            serde_json::to_value(StatsJson::from(&stats)).unwrap(),
            expected
        );
    }

    #[test]
    fn distribution_field_names() {
        let rows = [WorkerSessions {
            code: w1(),
            zone: Some("z".into()),
            status: WorkerStatus::Active,
            used_sessions: 2,
            sessions: Vec::new(),
        }];
        assert_eq!(
            serde_json::to_value(DistributionJson::new(&rows)).unwrap(),
            json!({
                "distribution": [{
                    "code": "w1", "zone": "z", "status": "active", "usedSessions": 2,
                    "sessionCount": 0, "sessions": [],
                }],
                "totalWorkers": 1,
            })
        );
    }

    #[test]
    fn audit_field_names() {
        let paged = Paged {
            items: vec![AuditEntry {
                at: Timestamp(3),
                actor: "admin".into(),
                action: "drain".into(),
                target: "w1".into(),
                detail: json!({"force": false}),
            }],
            total: 12,
        };
        let page = Page::new(None, Some(11), Some(100)).unwrap();
        assert_eq!(
            serde_json::to_value(AuditJson::new(&paged, page)).unwrap(),
            json!({
                "entries": [{
                    "at": 3, "actor": "admin", "action": "drain", "target": "w1",
                    "detail": {"force": false},
                }],
                "total": 12, "limit": 100, "offset": 11,
            })
        );
    }
}
