//! Read-only views: summary (the exam platform's registry), stats with zones and distribution
//! (Aetherium), filtered lists (minicloud, Aetherium); see docs/compat/.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Operations;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::ids::WorkerId;
use crate::worker::{SlotUsage, WorkerStatus, WorkerView};

/// Zone name used for workers without a zone.
pub const DEFAULT_ZONE: &str = "default";

/// The exam platform's admin summary: `workers healthy/total`, `slots
/// available/max`, `active sessions`, plus drain counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
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

impl ClusterSummary {
    fn add(&mut self, v: &WorkerView) {
        if v.record.deregistered_at.is_some() {
            self.offline_workers += 1;
            return;
        }
        self.total_workers += 1;
        self.healthy_workers += u32::from(v.availability.is_healthy());
        if v.counts_in_totals() {
            self.schedulable_workers += 1;
            self.total_max_sessions += v.max_sessions;
            self.total_available_sessions += v.available_sessions;
        }
        self.total_active_sessions += v.used_sessions;
        match v.status {
            WorkerStatus::Draining => self.draining_workers += 1,
            WorkerStatus::Drained => self.drained_workers += 1,
            WorkerStatus::Disabled => self.disabled_workers += 1,
            WorkerStatus::Unreachable => self.unreachable_workers += 1,
            WorkerStatus::Offline => self.offline_workers += 1,
            _ => {}
        }
    }

    /// Sums a set of views.
    pub fn of<'a>(views: impl IntoIterator<Item = &'a WorkerView>) -> Self {
        let mut s = Self::default();
        for v in views {
            s.add(v);
        }
        s
    }
}

/// One zone's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStats {
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

/// Cluster statistics (Aetherium's `/cluster/stats`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStats {
    /// The summary.
    #[serde(flatten)]
    pub summary: ClusterSummary,
    /// Workers per status.
    pub by_status: BTreeMap<String, u32>,
    /// Figures per zone (`default` for workers without one).
    pub zones: BTreeMap<String, ZoneStats>,
    /// CPU of all registered workers, cores.
    pub total_cpu_cores: f64,
    /// Memory of all registered workers, MB.
    pub total_memory_mb: u64,
    /// CPU and memory in use and usable, by the slot math, over the same
    /// workers.
    #[serde(default)]
    pub usage: SlotUsage,
}

/// Filters for listing workers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkerFilter {
    /// Only this status.
    pub status: Option<WorkerStatus>,
    /// Only this zone.
    pub zone: Option<String>,
    /// Only workers carrying this label with this value.
    pub label: Option<(String, String)>,
    /// Only schedulable workers (the "healthy list").
    pub schedulable_only: bool,
}

impl WorkerFilter {
    /// Whether `v` passes.
    pub fn matches(&self, v: &WorkerView) -> bool {
        self.status.is_none_or(|s| v.status == s)
            && self
                .zone
                .as_ref()
                .is_none_or(|z| v.record.description.zone.as_ref() == Some(z))
            && self
                .label
                .as_ref()
                .is_none_or(|(k, val)| v.record.description.labels.get(k) == Some(val))
            && (!self.schedulable_only || v.is_schedulable())
    }
}

/// A worker's sessions (Aetherium's distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSessions {
    /// The worker.
    pub code: WorkerId,
    /// Its zone.
    pub zone: Option<String>,
    /// Its status.
    pub status: WorkerStatus,
    /// Sessions in use.
    pub used_sessions: u32,
    /// Its dispatches (up to the listing limit).
    pub sessions: Vec<Dispatch>,
}

impl Operations {
    /// Workers passing `filter`, ordered by code.
    pub async fn list_workers(&self, filter: &WorkerFilter) -> Result<Vec<WorkerView>> {
        let mut views: Vec<WorkerView> = self
            .shared
            .worker_views()
            .await?
            .into_iter()
            .filter(|v| filter.matches(v))
            .collect();
        views.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(views)
    }

    /// The exam platform's summary.
    pub async fn summary(&self) -> Result<ClusterSummary> {
        Ok(ClusterSummary::of(&self.shared.worker_views().await?))
    }

    /// Statistics with per-status and per-zone breakdowns.
    pub async fn stats(&self) -> Result<ClusterStats> {
        let views = self.shared.worker_views().await?;
        let mut stats = ClusterStats {
            summary: ClusterSummary::of(&views),
            ..Default::default()
        };
        let mut cpu_millis = 0u64;
        for v in &views {
            *stats
                .by_status
                .entry(v.status.name().to_owned())
                .or_default() += 1;
            let zone = v
                .record
                .description
                .zone
                .clone()
                .unwrap_or_else(|| DEFAULT_ZONE.into());
            let z = stats.zones.entry(zone).or_default();
            z.workers += 1;
            z.healthy_workers += u32::from(v.availability.is_healthy());
            if v.counts_in_totals() {
                z.max_sessions += v.max_sessions;
                z.available_sessions += v.available_sessions;
            }
            z.active_sessions += v.used_sessions;
            if let Some(c) = v.record.capacity {
                cpu_millis += c.total_cpu.0;
                stats.total_memory_mb += c.total_memory_mb;
                stats.usage = stats.usage.plus(SlotUsage::of(&c, v.used_sessions));
            }
        }
        stats.total_cpu_cores = cpu_millis as f64 / 1000.0;
        Ok(stats)
    }

    /// Sessions per worker, up to `per_worker` each.
    pub async fn distribution(&self, per_worker: usize) -> Result<Vec<WorkerSessions>> {
        let views = self.list_workers(&WorkerFilter::default()).await?;
        let mut out = Vec::with_capacity(views.len());
        for v in views {
            let sessions = if v.dispatched > 0 {
                self.shared
                    .store
                    .worker_dispatches(v.id(), per_worker)
                    .await?
            } else {
                Vec::new()
            };
            out.push(WorkerSessions {
                code: v.id().clone(),
                zone: v.record.description.zone.clone(),
                status: v.status,
                used_sessions: v.used_sessions,
                sessions,
            });
        }
        Ok(out)
    }

    /// A worker's dispatches.
    pub async fn worker_sessions(&self, id: &WorkerId, limit: usize) -> Result<Vec<Dispatch>> {
        self.shared.worker_view(id).await?;
        self.shared.store.worker_dispatches(id, limit).await
    }
}
