//! Series per worker, rebuilt from the registry at every scrape.
//!
//! A worker that is gone (removed, or never registered) has no series: the
//! rows are replaced at each scrape and heartbeat counts are kept only for
//! workers the registry still holds, so the number of series follows the
//! fleet and nothing else.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use vdi_cluster_core::worker::WorkerView;
use vdi_cluster_core::{Timestamp, WorkerId};

/// Counted heartbeats of one worker, by result.
#[derive(Debug, Clone, Copy, Default)]
struct HeartbeatCounts {
    accepted: u64,
    stale: u64,
    refused: u64,
}

/// What a heartbeat of a known worker came to, for
/// `vdi_worker_heartbeats_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatResult {
    /// Applied.
    Accepted,
    /// Older than one already applied.
    Stale,
    /// Refused after its body was read (forbidden, invalid, backend).
    Refused,
}

/// One worker as the last scrape saw it.
#[derive(Debug, Clone)]
struct Row {
    worker: String,
    zone: String,
    status: &'static str,
    slots_max: u32,
    slots_used: u32,
    sessions: u32,
    heartbeat_age: Option<f64>,
    cpu: Option<f64>,
    memory: Option<f64>,
    disk: Option<f64>,
}

impl Row {
    fn of(view: &WorkerView, now: Timestamp) -> Self {
        let record = &view.record;
        let ratio = |percent: Option<f64>| percent.map(|p| p / 100.0);
        Self {
            worker: record.id.to_string(),
            zone: record.description.zone.clone().unwrap_or_default(),
            status: view.status.name(),
            slots_max: view.max_sessions,
            slots_used: view.used_sessions,
            sessions: record.reported_active,
            heartbeat_age: record.last_heartbeat_at.map(|t| now.since(t).as_secs_f64()),
            cpu: ratio(record.resources.cpu_percent),
            memory: ratio(record.resources.memory_percent),
            disk: ratio(record.resources.disk_percent),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    rows: Vec<Row>,
    heartbeats: HashMap<String, HeartbeatCounts>,
}

/// The per-worker series: a [`Collector`] over the rows of the last
/// scrape and the heartbeat counts since the process started.
#[derive(Debug, Default)]
pub struct WorkerSeries {
    state: Mutex<State>,
}

/// More workers than this in the heartbeat counts between two scrapes are
/// not counted (a bound on memory whatever callers send).
const MAX_COUNTED_WORKERS: usize = 200_000;

impl WorkerSeries {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a heartbeat of `worker`.
    pub fn heartbeat(&self, worker: &WorkerId, result: HeartbeatResult) {
        let mut state = self.state();
        let len = state.heartbeats.len();
        let counts = match state.heartbeats.get_mut(worker.as_str()) {
            Some(counts) => counts,
            None if len >= MAX_COUNTED_WORKERS => return,
            None => state.heartbeats.entry(worker.to_string()).or_default(),
        };
        match result {
            HeartbeatResult::Accepted => counts.accepted += 1,
            HeartbeatResult::Stale => counts.stale += 1,
            HeartbeatResult::Refused => counts.refused += 1,
        }
    }

    /// Replaces the rows with `views` (read at `now`) and forgets the
    /// heartbeat counts of workers no longer among them.
    pub fn refresh(&self, views: &[WorkerView], now: Timestamp) {
        let rows: Vec<Row> = views.iter().map(|v| Row::of(v, now)).collect();
        let present: HashSet<&str> = rows.iter().map(|r| r.worker.as_str()).collect();
        let mut state = self.state();
        state.heartbeats.retain(|w, _| present.contains(w.as_str()));
        state.rows = rows;
    }
}

fn gauges<'r, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &'r [Row],
    value: impl Fn(&'r Row) -> Option<V>,
) -> Result<(), std::fmt::Error>
where
    V: prometheus_client::encoding::EncodeGaugeValue + Clone + std::fmt::Debug + Send + Sync,
{
    let values: Vec<(&Row, V)> = rows.iter().filter_map(|r| Some((r, value(r)?))).collect();
    if values.is_empty() {
        // No worker reports it: no family (rather than an empty one).
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (row, v) in values {
        {
            ConstGauge::new(v).encode(family.encode_family(&[("worker", row.worker.as_str())])?)?;
        }
    }
    Ok(())
}

impl Collector for WorkerSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.state();
        let rows = &state.rows;
        let mut info = encoder.encode_descriptor(
            "worker_info",
            "1 per known worker, with its zone and status.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for row in rows {
            let labels = [
                ("worker", row.worker.as_str()),
                ("zone", row.zone.as_str()),
                ("status", row.status),
            ];
            ConstGauge::new(1_i64).encode(info.encode_family(&labels)?)?;
        }
        gauges(
            &mut encoder,
            "worker_slots_max",
            "Slots of the worker.",
            rows,
            |r| Some(r.slots_max),
        )?;
        gauges(
            &mut encoder,
            "worker_slots_used",
            "Slots used: dispatched sessions and what the worker runs beyond them.",
            rows,
            |r| Some(r.slots_used),
        )?;
        gauges(
            &mut encoder,
            "worker_sessions",
            "Sessions the worker reported in its last heartbeat.",
            rows,
            |r| Some(r.sessions),
        )?;
        gauges(
            &mut encoder,
            "worker_heartbeat_age_seconds",
            "Time since the worker's last heartbeat.",
            rows,
            |r| r.heartbeat_age,
        )?;
        gauges(
            &mut encoder,
            "worker_cpu_usage_ratio",
            "CPU in use on the worker (0-1), as last reported.",
            rows,
            |r| r.cpu,
        )?;
        gauges(
            &mut encoder,
            "worker_memory_usage_ratio",
            "Memory in use on the worker (0-1), as last reported.",
            rows,
            |r| r.memory,
        )?;
        gauges(
            &mut encoder,
            "worker_disk_usage_ratio",
            "Disk in use on the worker (0-1), as last reported.",
            rows,
            |r| r.disk,
        )?;
        let mut heartbeats = encoder.encode_descriptor(
            "worker_heartbeats",
            "Heartbeats of known workers by result.",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for row in rows {
            let counts = state
                .heartbeats
                .get(&row.worker)
                .copied()
                .unwrap_or_default();
            for (result, n) in [
                ("accepted", counts.accepted),
                ("stale", counts.stale),
                ("refused", counts.refused),
            ] {
                let labels = [("worker", row.worker.as_str()), ("result", result)];
                ConstCounter::new(n).encode(heartbeats.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
