//! The ranking snapshot: the fleet as a [`RankIndex`], read from the store
//! at most once per `snapshot_max_age` and shared by concurrent
//! allocations, with the workers found full since it was read — answered
//! full by the store, or filled by this replica's own reservations (its
//! slots counted down from the snapshot's free slots, so a replica does
//! not learn of its own placements by a contention retry).
//!
//! # What a refusal may rest on
//!
//! The two kinds of "full" are kept apart. A worker the store answered
//! full (a refused reservation, or one that took its last slot) is full
//! as of a committed write. A worker that only this replica's count fills
//! is an estimate: its reservations may still be in flight, and may take
//! nothing — a duplicate request of a session being placed is answered
//! the existing dispatch, a failed worker call is undone. Ranking skips
//! both; a refusal ([`Error::NoCapacity`](crate::Error::NoCapacity)) may
//! rest only on the first (see `allocate`), so that the read of the
//! session's own dispatch which follows it sees whatever reservation
//! filled the worker. Before refusing on an estimate, an allocation
//! waits for the answers of the reservations this replica has in flight
//! ([`settled`](SnapshotCache::settled)): they turn most estimates into
//! the store's word without a call of its own.
//!
//! # Refreshing without rebuilding
//!
//! A refresh reads the whole fleet, but does not index it from scratch:
//! the cache keeps the index it published before the current one, and once
//! no allocation ranks from it any more (it is one refresh old, so in
//! practice always) brings it to the new read worker by worker
//! ([`RankIndex::refresh`]) and publishes it. Only the workers whose free
//! slots, state or facets changed are moved in its orders. An index still
//! in use is left alone and a new one is built instead.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Placement;
use crate::error::Result;
use crate::ids::WorkerId;
use crate::scheduler::{RankIndex, WorkerSet};
use crate::worker::WorkerView;

/// A ranking index and the workers found full since it was built.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The fleet as read.
    pub(crate) index: Arc<RankIndex>,
    /// Workers the store answered full since the read. Shared with the
    /// cache: a ranking takes it without a copy, and the cache copies it
    /// only to change it while a ranking holds it.
    pub(crate) full: Arc<WorkerSet>,
    /// Workers this replica's own reservations since the read fill, by
    /// its count (not the store's answer; see the module docs). Shared
    /// as `full` is.
    pub(crate) filling: Arc<WorkerSet>,
}

impl Snapshot {
    fn fresh(index: Arc<RankIndex>) -> Self {
        Self {
            index,
            full: Arc::default(),
            filling: Arc::default(),
        }
    }
}

#[derive(Debug)]
struct Cached {
    fetched: Instant,
    snapshot: Snapshot,
    /// Reservations this replica made on each worker since the read.
    taken: HashMap<WorkerId, u32>,
}

/// The reservations of one service sent and not yet answered, by ticket.
#[derive(Debug, Default)]
struct InFlight {
    next: u64,
    outstanding: BTreeSet<u64>,
}

/// The cached snapshot of one service, the lock that coalesces
/// refreshes (and guards the index kept for the next one), and the
/// reservations in flight.
#[derive(Debug, Default)]
pub(crate) struct SnapshotCache {
    cached: Mutex<Option<Cached>>,
    /// The index published before the current one, to be brought to the
    /// next read instead of building one.
    refresh: tokio::sync::Mutex<Option<Arc<RankIndex>>>,
    /// The index of a snapshot dropped since the last refresh.
    dropped: Mutex<Option<Arc<RankIndex>>>,
    in_flight: Mutex<InFlight>,
    answered: tokio::sync::Notify,
}

/// A reservation of this replica in flight, counted from
/// [`note_reserving`](SnapshotCache::note_reserving) until dropped —
/// once its answer is noted, or when the allocation is cut short.
#[derive(Debug)]
pub(crate) struct Reserving<'a> {
    cache: &'a SnapshotCache,
    ticket: u64,
}

impl Drop for Reserving<'_> {
    fn drop(&mut self) {
        self.cache.flights().outstanding.remove(&self.ticket);
        self.cache.answered.notify_waiters();
    }
}

impl SnapshotCache {
    /// The snapshot if one younger than `max_age` is cached (`fresh`: one
    /// read after this call began), else one read by `load`. Concurrent
    /// refreshes are coalesced: one caller reads the fleet, the others
    /// wait for its result instead of each reading the whole fleet again.
    async fn get<F>(&self, fresh: bool, max_age: Duration, load: F) -> Result<Snapshot>
    where
        F: Future<Output = Result<Vec<WorkerView>>>,
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
        let mut spare = self.refresh.lock().await;
        if let Some(hit) = self.hit(usable) {
            return Ok(hit);
        }
        let fetched = Instant::now();
        let views = load.await?;
        let index = match spare.take() {
            Some(mut kept) => match Arc::get_mut(&mut kept) {
                Some(index) => {
                    index.refresh(views);
                    kept
                }
                None => Arc::new(RankIndex::new(views)),
            },
            None => Arc::new(RankIndex::new(views)),
        };
        let snapshot = Snapshot::fresh(index);
        let replaced = self.lock().replace(Cached {
            fetched,
            snapshot: snapshot.clone(),
            taken: HashMap::new(),
        });
        *spare = replaced
            .map(|c| c.snapshot.index)
            .or_else(|| self.dropped());
        Ok(snapshot)
    }

    /// The index of the snapshot last dropped by
    /// [`invalidate`](Self::invalidate), if any.
    fn dropped(&self) -> Option<Arc<RankIndex>> {
        self.dropped_index().take()
    }

    fn dropped_index(&self) -> std::sync::MutexGuard<'_, Option<Arc<RankIndex>>> {
        self.dropped.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hit(&self, usable: impl Fn(&Cached) -> bool) -> Option<Snapshot> {
        self.lock()
            .as_ref()
            .filter(|c| usable(c))
            .map(|c| c.snapshot.clone())
    }

    /// Remembers that `worker` answered full, until the next read.
    pub(crate) fn note_full(&self, worker: &WorkerId) {
        if let Some(c) = self.lock().as_mut() {
            add(&mut c.snapshot.full, worker);
        }
    }

    /// Counts a reservation of this replica on `worker`, as it is sent
    /// (so concurrent requests of this replica rank with it); once they use
    /// up its free slots in the snapshot, it is filling until the next
    /// read. It is in flight until the guard is dropped.
    pub(crate) fn note_reserving(&self, worker: &WorkerId) -> Reserving<'_> {
        let ticket = {
            let mut f = self.flights();
            let ticket = f.next;
            f.next += 1;
            f.outstanding.insert(ticket);
            ticket
        };
        if let Some(c) = self.lock().as_mut() {
            let taken = c.taken.entry(worker.clone()).or_default();
            *taken += 1;
            if c.snapshot
                .index
                .get(worker)
                .is_none_or(|v| v.available_sessions <= *taken)
            {
                add(&mut c.snapshot.filling, worker);
            }
        }
        Reserving {
            cache: self,
            ticket,
        }
    }

    /// Returns once every reservation this replica had in flight when it
    /// was called has been answered (or cut short): what they filled is
    /// then the store's word (see [`note_slots_left`](Self::note_slots_left)
    /// and [`note_full`](Self::note_full)). Reservations sent after the
    /// call are not waited for, so a stream of them cannot hold it up.
    pub(crate) async fn settled(&self) {
        let upto = self.flights().next;
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            // Registered before looking, so no answer is missed between.
            answered.as_mut().enable();
            if self.flights().outstanding.range(..upto).next().is_none() {
                return;
            }
            answered.await;
        }
    }

    /// Takes the store's count of `worker`'s free slots after a
    /// reservation of this replica: when it is below what the snapshot
    /// (less this replica's reservations) shows, other replicas took the
    /// difference, and at 0 the worker is known full until the next read
    /// (the store's answer). It only ever lowers the estimate: reservations
    /// of this replica still in flight are not in the store's count yet,
    /// and a worker they would fill is filling.
    pub(crate) fn note_slots_left(&self, worker: &WorkerId, slots_left: u32) {
        if let Some(c) = self.lock().as_mut() {
            let free = c
                .snapshot
                .index
                .get(worker)
                .map_or(0, |v| v.available_sessions);
            let taken = c.taken.entry(worker.clone()).or_default();
            *taken = (*taken).max(free.saturating_sub(slots_left));
            if slots_left == 0 {
                add(&mut c.snapshot.full, worker);
            } else if free <= *taken {
                add(&mut c.snapshot.filling, worker);
            }
        }
    }

    /// Drops the snapshot: the next ranking reads the fleet again (and
    /// brings its index up to date, if nothing else holds it by then).
    pub(crate) fn invalidate(&self) {
        let dropped = self.lock().take();
        if let Some(c) = dropped {
            *self.dropped_index() = Some(c.snapshot.index);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds `worker` to a set rankings may hold: copied first only when it
/// is not there yet and a ranking holds the set.
fn add(set: &mut Arc<WorkerSet>, worker: &WorkerId) {
    if !set.contains(worker) {
        Arc::make_mut(set).insert(worker.clone());
    }
}

impl Placement {
    /// The ranking snapshot, indexed: reused for up to `snapshot_max_age`,
    /// with the workers found full since it was read. `fresh` asks for one
    /// read after this call began.
    pub(crate) async fn ranking_snapshot(&self, fresh: bool) -> Result<Snapshot> {
        let max_age = self.shared.config.snapshot_max_age;
        let load = self.shared.worker_views();
        if max_age.is_zero() {
            return Ok(Snapshot::fresh(Arc::new(RankIndex::new(load.await?))));
        }
        self.snapshots.get(fresh, max_age, load).await
    }

    /// Remembers that `worker` answered full, until the next read.
    pub(crate) fn note_full(&self, worker: &WorkerId) {
        self.snapshots.note_full(worker);
    }

    /// Counts a reservation of this replica on `worker`, as it is sent,
    /// against its free slots in the snapshot; in flight until the guard
    /// is dropped.
    pub(crate) fn note_reserving(&self, worker: &WorkerId) -> Reserving<'_> {
        self.snapshots.note_reserving(worker)
    }

    /// Waits for the answers of this replica's reservations in flight
    /// ([`SnapshotCache::settled`]).
    pub(crate) async fn reservations_settled(&self) {
        self.snapshots.settled().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(cache: &SnapshotCache) -> Snapshot {
        let load = async { Ok(Vec::new()) };
        cache
            .get(true, Duration::from_secs(60), load)
            .await
            .unwrap()
    }

    /// A refresh brings the index published before the current one up to
    /// the new read, unless an allocation still ranks from it.
    #[tokio::test]
    async fn a_refresh_reuses_the_index_no_allocation_holds() {
        let cache = SnapshotCache::default();
        let first = Arc::as_ptr(&read(&cache).await.index);
        let second = Arc::as_ptr(&read(&cache).await.index);
        assert_ne!(first, second);
        let third = read(&cache).await;
        assert_eq!(Arc::as_ptr(&third.index), first);
        // `third` is still held: the next refresh after it builds anew
        // rather than touch it, and the one after that reuses `second`'s.
        assert_eq!(Arc::as_ptr(&read(&cache).await.index), second);
        let fifth = Arc::as_ptr(&read(&cache).await.index);
        assert_ne!(fifth, first);
        drop(third);
        // A dropped snapshot's index is kept for the next refresh too.
        cache.invalidate();
        let after = Arc::as_ptr(&read(&cache).await.index);
        assert!(after == fifth || after == second);
    }
}
