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
//! taken it waits in line — a surge of clicks is served in order — for up
//! to the acquire timeout, as it waited for the pool's connections before.
//! It stops waiting at once when the lane's server went away: a call of
//! the lane failed for a reason that says so (the connection reset or
//! refused, the server shutting down, a timeout; what `primary` reacts
//! to), and no call answered since, for
//! [`stalled_after`](crate::PgStoreConfig::stalled_after). Waiting then
//! fails with [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable)
//! — the reference server answers 503 — instead of after the acquire
//! timeout, and so do new calls while every turn stays taken. A server
//! that is only slow is waited for: a refusal needs a failure, not just a
//! long line or long statements. A call that finds a free turn always
//! goes ahead, so the lane is tried again as its hung calls end; any
//! answer, or the store's move to another primary, opens the gate afresh.
//! A timer that fires far later than due says this process was not
//! running (paused, starved of CPU), not that the server is gone: the
//! lane then gets a new window rather than a verdict.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use vdi_cluster_core::store::Lane;

use crate::error::PgError;
use crate::error::primary_gone;

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
        let options = pool.options();
        let turns = options.get_max_connections().max(1);
        let gate = Gate::new(turns, stalled_after, options.get_acquire_timeout());
        Self {
            gate: Arc::new(gate),
            pool,
        }
    }

    /// The lane's pool.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `call` in a turn of this lane ([`PgError::Stalled`] when the
    /// lane stalled before one was free, the pool's timeout when none was
    /// free within its acquire timeout).
    pub(crate) async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, PgError>>,
    ) -> Result<T, PgError> {
        let _turn = self.gate.enter().await?;
        let result = call.await;
        match &result {
            Err(error) if primary_gone(error) => self.gate.failed(),
            _ => self.gate.progressed(),
        }
        result
    }
}

/// The turns on one lane's connections, and what its calls last showed.
#[derive(Debug)]
pub(crate) struct Gate {
    turns: Arc<Semaphore>,
    state: Mutex<Seen>,
    /// Wakes the calls waiting for a turn when a call finds the server
    /// gone.
    failure: Notify,
    stalled_after: Duration,
    /// The longest wait for a turn (the pool's acquire timeout).
    longest: Duration,
}

/// What the calls of a lane last showed.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// When a call last answered, took a free turn, or the store moved to
    /// another server.
    progress: Instant,
    /// Whether a call found the server gone since.
    failing: bool,
}

impl Gate {
    fn new(turns: u32, stalled_after: Duration, longest: Duration) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(turns as usize)),
            state: Mutex::new(Seen {
                progress: Instant::now(),
                failing: false,
            }),
            failure: Notify::new(),
            stalled_after,
            longest,
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn progressed(&self) {
        *self.seen() = Seen {
            progress: Instant::now(),
            failing: false,
        };
    }

    fn failed(&self) {
        self.seen().failing = true;
        self.failure.notify_waiters();
    }

    /// Whether a timer due `due` firing `now` fired so late that the
    /// process was not running in between.
    fn paused(&self, due: Instant, now: Instant) -> bool {
        now.saturating_duration_since(due) > self.stalled_after / 2
    }

    /// A turn: a free one at once, else the first given back within the
    /// acquire timeout — unless, first, a call found the server gone and
    /// none answered for `stalled_after`.
    async fn enter(&self) -> Result<OwnedSemaphorePermit, PgError> {
        if let Ok(turn) = Arc::clone(&self.turns).try_acquire_owned() {
            self.seen().progress = Instant::now();
            return Ok(turn);
        }
        let timed_out = tokio::time::sleep(self.longest);
        tokio::pin!(timed_out);
        let wait = Arc::clone(&self.turns).acquire_owned();
        tokio::pin!(wait);
        loop {
            let failure = self.failure.notified();
            tokio::pin!(failure);
            failure.as_mut().enable();
            let armed = Instant::now();
            let seen = *self.seen();
            let deadline = seen.progress + self.stalled_after;
            tokio::select! {
                biased;
                turn = &mut wait => return turn.map_err(|_| PgError::Stalled(self.stalled_after)),
                () = &mut timed_out => return Err(sqlx::Error::PoolTimedOut.into()),
                () = &mut failure => {}
                () = tokio::time::sleep_until(deadline), if seen.failing => {
                    let now = Instant::now();
                    if self.paused(armed.max(deadline), now) {
                        // This process was not running (paused, or starved
                        // of CPU): the answers of the lane's calls may be
                        // waiting unread, so they get a new window rather
                        // than a verdict.
                        self.seen().progress = now;
                    } else {
                        let seen = *self.seen();
                        if seen.failing && seen.progress + self.stalled_after <= now {
                            return Err(PgError::Stalled(self.stalled_after));
                        }
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
    async fn a_waiting_call_goes_ahead_while_others_answer_and_gives_up_when_the_server_is_gone() {
        let gate = Gate::new(1, Duration::from_secs(1), Duration::from_secs(3600));
        let held = gate.enter().await.expect("a free turn");
        gate.failed();
        // Calls answering keep the line moving past the stall bound.
        let waiting = async { gate.enter().await.map(drop) };
        let progress = async {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(600)).await;
                gate.progressed();
            }
            drop(held);
        };
        let (waited, ()) = tokio::join!(waiting, progress);
        assert!(waited.is_ok(), "{waited:?}");

        // A call found the server gone and none answers: the waiting call
        // and the next one give up.
        let _held = gate.enter().await.expect("a free turn");
        gate.failed();
        let stalled = gate.enter().await;
        assert!(matches!(stalled, Err(PgError::Stalled(_))), "{stalled:?}");
        let next = gate.enter().await;
        assert!(matches!(next, Err(PgError::Stalled(_))), "{next:?}");
        gate.progressed();
        let after = tokio::time::timeout(Duration::from_secs(10), gate.enter()).await;
        assert!(after.is_err(), "waits again once a call answered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_server_is_waited_for_up_to_the_acquire_timeout() {
        let gate = Gate::new(1, Duration::from_secs(1), Duration::from_secs(30));
        let _held = gate.enter().await.expect("a free turn");
        let waited = gate.enter().await;
        assert!(
            matches!(waited, Err(PgError::Sqlx(sqlx::Error::PoolTimedOut))),
            "no call failed: not stalled, timed out as the pool does: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_of_the_process_is_no_verdict_on_the_server() {
        let gate = Arc::new(Gate::new(
            1,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ));
        let held = gate.enter().await.expect("a free turn");
        gate.failed();
        let waiter = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.enter().await.map(drop) }
        });
        tokio::task::yield_now().await;
        // The timer of the waiting call fires 4 s after it was due.
        tokio::time::advance(Duration::from_secs(5)).await;
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "still waiting after the pause");
        drop(held);
        let waited = waiter.await.expect("task");
        assert!(waited.is_ok(), "{waited:?}");
    }
}
