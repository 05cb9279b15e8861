//! The recount after a run: dispatch records per worker against its slots.

use std::collections::{HashMap, HashSet};

use vdi_cluster_core::{SessionKey, Store, WorkerId};

/// Largest number of scan pages read (a bound on the loop, far above any
/// run's size).
const MAX_PAGES: usize = 100_000;

/// What a recount of the records found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Audit {
    /// Workers in the registry.
    pub workers: usize,
    /// Dispatch records (reserved, active or orphaned).
    pub dispatches: usize,
    /// Workers holding more dispatch records than they have slots.
    pub over_allocated_workers: usize,
    /// Records beyond the slots, summed over workers (must be 0).
    pub over_allocations: u64,
    /// Workers whose stored dispatched counter differs from their records.
    pub counter_drift: usize,
}

/// Counts the dispatch records of every worker by scanning them all, and
/// compares each count with the worker's `maxSessions` and its stored
/// counter.
pub async fn audit(store: &dyn Store) -> vdi_cluster_core::Result<Audit> {
    let workers = store.workers().await?;
    let mut records: HashMap<WorkerId, u64> = HashMap::new();
    let mut seen: HashSet<SessionKey> = HashSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = store.scan_dispatches(cursor.as_deref(), 1000).await?;
        for d in page.dispatches {
            if seen.insert(d.key.clone()) {
                *records.entry(d.worker).or_default() += 1;
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut out = Audit {
        workers: workers.len(),
        dispatches: seen.len(),
        ..Audit::default()
    };
    for w in &workers {
        let held = records.get(&w.record.id).copied().unwrap_or(0);
        let max = u64::from(w.record.max_sessions());
        if held > max {
            out.over_allocated_workers += 1;
            out.over_allocations += held - max;
        }
        if held != u64::from(w.dispatched) {
            out.counter_drift += 1;
        }
    }
    Ok(out)
}
