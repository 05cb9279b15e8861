//! The ranking snapshot: the fleet as a [`RankIndex`], read from the store
//! at most once per `snapshot_max_age` and shared by concurrent
//! allocations, with the workers found full since it was read — answered
//! full by the store, or filled by this replica's own reservations (its
//! slots counted down from the snapshot's free slots, so a replica does
//! not learn of its own placements by a contention retry).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Placement;
use crate::error::Result;
use crate::ids::WorkerId;
use crate::scheduler::RankIndex;

/// A ranking index and the workers known to be full since it was built.
pub(crate) type Snapshot = (Arc<RankIndex>, HashSet<WorkerId>);

#[derive(Debug)]
struct Cached {
    fetched: Instant,
    index: Arc<RankIndex>,
    known_full: HashSet<WorkerId>,
    /// Reservations this replica made on each worker since the read.
    taken: HashMap<WorkerId, u32>,
}

/// The cached snapshot of one service, and the lock that coalesces
/// refreshes.
#[derive(Debug, Default)]
pub(crate) struct SnapshotCache {
    cached: Mutex<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
}

impl SnapshotCache {
    /// The snapshot if one younger than `max_age` is cached (`fresh`: one
    /// read after this call began), else one read by `load`. Concurrent
    /// refreshes are coalesced: one caller reads the fleet, the others
    /// wait for its result instead of each reading the whole fleet again.
    async fn get<F>(&self, fresh: bool, max_age: Duration, load: F) -> Result<Snapshot>
    where
        F: Future<Output = Result<RankIndex>>,
    {
        let asked = Instant::now();
        let usable = |c: &Cached| {
            if fresh {
                c.fetched >= asked
            } else {
                c.fetched.elapsed() < max_age
            }
        };
        if let Some(hit) = self.hit(usable) {
            return Ok(hit);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(hit) = self.hit(usable) {
            return Ok(hit);
        }
        let fetched = Instant::now();
        let index = Arc::new(load.await?);
        *self.lock() = Some(Cached {
            fetched,
            index: Arc::clone(&index),
            known_full: HashSet::new(),
            taken: HashMap::new(),
        });
        Ok((index, HashSet::new()))
    }

    fn hit(&self, usable: impl Fn(&Cached) -> bool) -> Option<Snapshot> {
        self.lock()
            .as_ref()
            .filter(|c| usable(c))
            .map(|c| (Arc::clone(&c.index), c.known_full.clone()))
    }

    /// Remembers that `worker` answered full, until the next read.
    pub(crate) fn note_full(&self, worker: &WorkerId) {
        if let Some(c) = self.lock().as_mut() {
            c.known_full.insert(worker.clone());
        }
    }

    /// Counts a reservation of this replica on `worker`, as it is sent
    /// (so concurrent requests of this replica rank with it); once they use
    /// up its free slots in the snapshot, it is known full until the next
    /// read.
    pub(crate) fn note_reserving(&self, worker: &WorkerId) {
        if let Some(c) = self.lock().as_mut() {
            let taken = c.taken.entry(worker.clone()).or_default();
            *taken += 1;
            if c.index
                .get(worker)
                .is_none_or(|v| v.available_sessions <= *taken)
            {
                c.known_full.insert(worker.clone());
            }
        }
    }

    /// Takes the store's count of `worker`'s free slots after a
    /// reservation of this replica: when it is below what the snapshot
    /// (less this replica's reservations) shows, other replicas took the
    /// difference, and at 0 the worker is known full until the next read.
    /// It only ever lowers the estimate: reservations of this replica
    /// still in flight are not in the store's count yet.
    pub(crate) fn note_slots_left(&self, worker: &WorkerId, slots_left: u32) {
        if let Some(c) = self.lock().as_mut() {
            let free = c.index.get(worker).map_or(0, |v| v.available_sessions);
            let taken = c.taken.entry(worker.clone()).or_default();
            *taken = (*taken).max(free.saturating_sub(slots_left));
            if slots_left == 0 || free <= *taken {
                c.known_full.insert(worker.clone());
            }
        }
    }

    /// Drops the snapshot: the next ranking reads the fleet again.
    pub(crate) fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Placement {
    /// The ranking snapshot, indexed: reused for up to `snapshot_max_age`,
    /// with the workers found full since it was read. `fresh` asks for one
    /// read after this call began.
    pub(crate) async fn ranking_snapshot(&self, fresh: bool) -> Result<Snapshot> {
        let max_age = self.shared.config.snapshot_max_age;
        let load = async { Ok(RankIndex::new(self.shared.worker_views().await?)) };
        if max_age.is_zero() {
            return Ok((Arc::new(load.await?), HashSet::new()));
        }
        self.snapshots.get(fresh, max_age, load).await
    }

    /// Remembers that `worker` answered full, until the next read.
    pub(crate) fn note_full(&self, worker: &WorkerId) {
        self.snapshots.note_full(worker);
    }

    /// Counts a reservation of this replica on `worker`, as it is sent,
    /// against its free slots in the snapshot.
    pub(crate) fn note_reserving(&self, worker: &WorkerId) {
        self.snapshots.note_reserving(worker);
    }

    /// Takes the store's count of `worker`'s free slots after a
    /// reservation ([`SnapshotCache::note_slots_left`]).
    pub(crate) fn note_slots_left(&self, worker: &WorkerId, slots_left: u32) {
        self.snapshots.note_slots_left(worker, slots_left);
    }

    /// Drops the snapshot after a change that ranking must see at once.
    pub(crate) fn invalidate_snapshot(&self) {
        self.snapshots.invalidate();
    }
}
