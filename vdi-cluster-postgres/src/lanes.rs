//! A store's connections, as lanes, and how long a call waits for one.
//!
//! Core names the [`Lane`] of each call: the
//! [liveness lane](Lane::Liveness) (worker heartbeats and registrations,
//! the leader lease) and the general lane (everything else). Each lane
//! has a pool of its own — the general one of
//! [`max_connections`](crate::PgStoreConfig::max_connections), the
//! liveness one of
//! [`liveness_connections`](crate::PgStoreConfig::liveness_connections) —
//! so a heartbeat never waits behind students' clicks for a connection,
//! however many of them queue: a worker whose heartbeats do not land
//! within the TTL is judged unreachable, and placements on it are refused.
//!
//! A call takes a turn on its lane's [`Gate`] (one per connection) before
//! it uses the pool, and gives it back when it ends. When every turn is
//! taken it waits in line — a surge of clicks is served in order — as long
//! as the lane's calls go on finishing: a call that answers (anything but
//! a sign that the server is gone) is progress. Once no call of the lane
//! has for [`stalled_after`](crate::PgStoreConfig::stalled_after), the
//! server is not answering (the primary died, a failover is under way, the
//! connections hang): waiting for a turn then fails at once with
//! [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable) — the
//! reference server answers 503 — instead of after the acquire timeout,
//! and so do new calls until a turn frees. A call that finds a free turn
//! always goes ahead, so a lane that stalled is tried again as its
//! hung calls end, and the gate opens afresh when the store moves to
//! another primary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use vdi_cluster_core::store::Lane;

use crate::error::PgError;
use crate::primary::primary_gone;

/// The general and the liveness lane of a store.
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    general: LanePool,
    liveness: LanePool,
}

/// One lane: its pool and the turns on it.
#[derive(Debug, Clone)]
pub(crate) struct LanePool {
    pool: PgPool,
    gate: Arc<Gate>,
}

impl Lanes {
    /// Lanes on `general` and `liveness`, each with as many turns as its
    /// pool has connections.
    pub(crate) fn new(general: PgPool, liveness: PgPool, stalled_after: Duration) -> Self {
        Self {
            general: LanePool::new(general, stalled_after),
            liveness: LanePool::new(liveness, stalled_after),
        }
    }

    /// The lane of the calling task's calls.
    pub(crate) fn current(&self) -> &LanePool {
        match Lane::current() {
            Lane::General => &self.general,
            Lane::Liveness => &self.liveness,
        }
    }

    /// The general lane's pool (migrations, and the store's `pool()`
    /// outside any lane).
    pub(crate) fn general(&self) -> &PgPool {
        &self.general.pool
    }

    fn both(&self) -> [&LanePool; 2] {
        [&self.general, &self.liveness]
    }

    /// Moves every lane to the server of `options` (see `primary`), and
    /// opens the gates afresh: the calls waiting get a new server's time.
    pub(crate) fn move_to(&self, options: &PgConnectOptions) {
        for lane in self.both() {
            lane.pool.set_connect_options(options.clone());
            lane.gate.progressed();
        }
    }

    /// Whether the store was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.general.pool.is_closed()
    }

    /// Closes every connection of every lane.
    pub(crate) async fn close(&self) {
        for lane in self.both() {
            lane.pool.close().await;
        }
    }
}

impl LanePool {
    fn new(pool: PgPool, stalled_after: Duration) -> Self {
        let turns = pool.options().get_max_connections().max(1);
        Self {
            gate: Arc::new(Gate::new(turns, stalled_after)),
            pool,
        }
    }

    /// The lane's pool.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `call` in a turn of this lane ([`PgError::Stalled`] when the
    /// lane stalled before one was free).
    pub(crate) async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, PgError>>,
    ) -> Result<T, PgError> {
        let _turn = self.gate.enter().await?;
        let result = call.await;
        if result
            .as_ref()
            .err()
            .is_none_or(|error| !primary_gone(error))
        {
            self.gate.progressed();
        }
        result
    }
}

/// The turns on one lane's connections, and when its calls last made
/// progress.
#[derive(Debug)]
pub(crate) struct Gate {
    turns: Arc<Semaphore>,
    /// When a call of the lane last answered, took a free turn, or the
    /// store moved to another server.
    progress: Mutex<Instant>,
    stalled_after: Duration,
}

impl Gate {
    fn new(turns: u32, stalled_after: Duration) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(turns as usize)),
            progress: Mutex::new(Instant::now()),
            stalled_after,
        }
    }

    fn last_progress(&self) -> Instant {
        *self
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn progressed(&self) {
        *self
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
    }

    /// A turn: a free one at once, else the first given back — unless no
    /// call made progress for `stalled_after` first.
    async fn enter(&self) -> Result<OwnedSemaphorePermit, PgError> {
        if let Ok(turn) = Arc::clone(&self.turns).try_acquire_owned() {
            self.progressed();
            return Ok(turn);
        }
        let wait = Arc::clone(&self.turns).acquire_owned();
        tokio::pin!(wait);
        loop {
            let deadline = self.last_progress() + self.stalled_after;
            tokio::select! {
                biased;
                turn = &mut wait => return turn.map_err(|_| PgError::Stalled(self.stalled_after)),
                () = tokio::time::sleep_until(deadline) => {
                    if self.last_progress() + self.stalled_after <= Instant::now() {
                        return Err(PgError::Stalled(self.stalled_after));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_waiting_call_goes_ahead_while_others_finish_and_gives_up_when_none_does() {
        let gate = Gate::new(1, Duration::from_secs(1));
        let held = gate.enter().await.expect("a free turn");
        // Calls finishing keep the line moving past the stall bound.
        let waiting = async {
            let turn = gate.enter().await;
            turn.map(drop)
        };
        let progress = async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(600)).await;
                gate.progressed();
            }
            drop(held);
        };
        let (waited, ()) = tokio::join!(waiting, progress);
        assert!(waited.is_ok(), "{waited:?}");

        // Nothing finishing: the waiting call and the next one give up.
        let _held = gate.enter().await.expect("a free turn");
        let stalled = gate.enter().await;
        assert!(matches!(stalled, Err(PgError::Stalled(_))), "{stalled:?}");
        let next = gate.enter().await;
        assert!(matches!(next, Err(PgError::Stalled(_))), "{next:?}");
        gate.progressed();
        let after = tokio::time::timeout(Duration::from_millis(100), gate.enter()).await;
        assert!(after.is_err(), "waits again once a call answered");
    }
}
