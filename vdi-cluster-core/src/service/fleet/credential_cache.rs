//! A replica's short memory of workers' own credentials, so that a
//! worker's requests in quick succession (a heartbeat storm, a
//! registration and its first heartbeats) do not each read its
//! credential from the store.
//!
//! # What it may and may not decide
//!
//! Only an **acceptance** is ever answered from memory: a secret that
//! matched the remembered credential, or the shared worker token for a
//! worker remembered without a credential of its own. Every refusal is
//! checked against a fresh read first, so a rotation (the new secret), a
//! join or a reset made through another replica is never refused for a
//! stale memory.
//!
//! A change that *withdraws* an acceptance — a revocation, a reset, a join
//! that gives a worker on the shared token a credential of its own — is
//! honoured:
//!
//! * through this replica, from the next request on (its own writes
//!   forget the worker before they return, and a read that began before
//!   the write is not remembered);
//! * through another replica, within the cache's lifetime
//!   ([`ServiceConfig::credential_cache`](crate::ServiceConfig::credential_cache),
//!   2 s by default; zero turns the cache off).
//!
//! Expiry needs no read: each check compares the remembered secrets'
//! validity with the clock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::credential::CredentialSnapshot;
use crate::ids::WorkerId;
use crate::time::Timestamp;

/// Workers remembered at most: past it the memory starts again empty.
pub(crate) const MAX_REMEMBERED: usize = 65_536;

/// The replica's memory of workers' credentials (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct CredentialCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// What the store held for a worker (`None`: no credential of its
    /// own), and when it was read.
    entries: HashMap<WorkerId, (Timestamp, Option<CredentialSnapshot>)>,
    /// Moved by every local change: a read that began under an older
    /// generation is not remembered.
    generation: u64,
}

/// A read about to be made, remembered by [`CredentialCache::remember`]
/// only if no local change happened since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTicket(u64);

impl CredentialCache {
    /// What is remembered for `worker`, if it was read less than `ttl`
    /// before `now`.
    pub(crate) fn recall(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        ttl: Duration,
    ) -> Option<Option<CredentialSnapshot>> {
        if ttl.is_zero() {
            return None;
        }
        let inner = self.lock();
        let (read_at, stored) = inner.entries.get(worker)?;
        (*read_at <= now && now.since(*read_at) < ttl).then(|| stored.clone())
    }

    /// Taken before a read of the store that may be remembered.
    pub(crate) fn ticket(&self) -> ReadTicket {
        ReadTicket(self.lock().generation)
    }

    /// Remembers what a read made under `ticket` at `now` found, unless a
    /// local change happened since the ticket was taken.
    pub(crate) fn remember(
        &self,
        ticket: ReadTicket,
        worker: &WorkerId,
        now: Timestamp,
        stored: Option<CredentialSnapshot>,
    ) {
        let mut inner = self.lock();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= MAX_REMEMBERED && !inner.entries.contains_key(worker) {
            inner.entries.clear();
        }
        inner.entries.insert(worker.clone(), (now, stored));
    }

    /// Forgets `worker`: a change to its credential through this replica.
    /// Reads that began before are not remembered either.
    pub(crate) fn forget(&self, worker: &WorkerId) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.entries.remove(worker);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod service_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::WorkerCredential;

    fn id(code: &str) -> WorkerId {
        WorkerId::parse("code", code).unwrap()
    }

    fn snapshot(version: u64) -> CredentialSnapshot {
        CredentialSnapshot {
            credential: WorkerCredential::revoked(),
            version,
        }
    }

    const TTL: Duration = Duration::from_secs(2);

    #[test]
    fn a_read_is_recalled_for_its_lifetime_only() {
        let cache = CredentialCache::default();
        let (w, t0) = (id("w-1"), Timestamp::from_millis(10_000));
        assert_eq!(cache.recall(&w, t0, TTL), None);
        cache.remember(cache.ticket(), &w, t0, Some(snapshot(3)));
        let recalled = cache.recall(&w, t0.plus(Duration::from_millis(1_999)), TTL);
        assert_eq!(recalled.flatten().map(|s| s.version), Some(3));
        assert_eq!(cache.recall(&w, t0.plus(TTL), TTL), None);
        // A clock that went back does not make an entry live longer.
        assert_eq!(
            cache.recall(&w, t0.minus(Duration::from_millis(1)), TTL),
            None
        );
        // Zero turns the cache off.
        assert_eq!(cache.recall(&w, t0, Duration::ZERO), None);
        // A worker without a credential of its own is remembered as such.
        cache.remember(cache.ticket(), &id("w-2"), t0, None);
        assert_eq!(cache.recall(&id("w-2"), t0, TTL), Some(None));
    }

    #[test]
    fn a_local_change_forgets_the_worker_and_reads_begun_before_it() {
        let cache = CredentialCache::default();
        let (w, t0) = (id("w-1"), Timestamp::from_millis(10_000));
        cache.remember(cache.ticket(), &w, t0, None);
        let before = cache.ticket();
        cache.forget(&w);
        assert_eq!(cache.recall(&w, t0, TTL), None);
        // A read that began before the change would bring the old state back.
        cache.remember(before, &w, t0, None);
        assert_eq!(cache.recall(&w, t0, TTL), None);
        cache.remember(cache.ticket(), &w, t0, Some(snapshot(4)));
        assert!(cache.recall(&w, t0, TTL).is_some());
    }

    #[test]
    fn the_memory_is_bounded() {
        let cache = CredentialCache::default();
        let t0 = Timestamp::from_millis(10_000);
        for n in 0..=MAX_REMEMBERED {
            cache.remember(cache.ticket(), &id(&format!("w-{n}")), t0, None);
        }
        assert!(cache.lock().entries.len() <= MAX_REMEMBERED);
        assert_eq!(
            cache.recall(&id(&format!("w-{MAX_REMEMBERED}")), t0, TTL),
            Some(None)
        );
    }
}
