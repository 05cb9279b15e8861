//! Following the primary of a PostgreSQL deployment across failovers.
//!
//! With several hosts in the store's URL ([`Hosts`]), the pools (one per
//! [lane](crate::lanes)) open their connections to the server last found
//! writable. A call that fails
//! because that server is gone (refused, dropped, timed out, shutting
//! down) or because it is now a standby (`read_only_sql_transaction`)
//! makes the store look for the writable server again, in the
//! background: each host is asked in turn (`pg_is_in_recovery()` and
//! `transaction_read_only`), the current one first, every
//! [`LOOK_INTERVAL`] until one answers writable or [`LOOK_FOR`] has
//! passed. When another host answers, the pools' connect options move to
//! it, and every connection opened before the move is closed as it is
//! next taken from or given back to the pool, so no statement reaches the
//! demoted server. A connection is also checked when it is opened: one to
//! a server that is not writable is refused.
//!
//! A call may also fail to tell: when the primary dies while the pool's
//! connections are idle, the pool's new connections to its address are
//! refused, and the pool retries them quietly until its acquire timeout.
//! So a call unanswered after [`SLOW_CALL`] starts a look as well (at most
//! one per [`SLOW_LOOK_GAP`]; a look that finds the current host writable
//! ends after that one question), and the pool, which reads its connect
//! options again at each retry, reaches the promoted server within a retry
//! of the move instead of failing every waiting call at the acquire
//! timeout first.
//!
//! Nothing is retried here: a call that failed answers
//! [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable), and the
//! caller's own retry is safe (`docs/high-availability.md` says why for
//! each atomic step).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::Connection;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use tokio::time::Instant;

use crate::error::{NOT_WRITABLE, PgError, primary_gone};
use crate::hosts::Hosts;
use crate::lanes::Lanes;

/// The shortest time between two rounds of asking the hosts.
pub(crate) const LOOK_INTERVAL: Duration = Duration::from_millis(200);
/// How long one look keeps asking before it gives up (the next failing
/// call starts another).
pub(crate) const LOOK_FOR: Duration = Duration::from_secs(60);
/// The longest wait for one host's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// A call still unanswered after this long starts a look too (see
/// [`Primary::watch`]).
pub(crate) const SLOW_CALL: Duration = Duration::from_secs(1);
/// The shortest time between two looks started by slow calls.
const SLOW_LOOK_GAP: Duration = Duration::from_secs(1);

/// Whether the server a connection reached may be written to.
const WRITABLE: &str =
    "SELECT NOT (pg_is_in_recovery() OR current_setting('transaction_read_only')::bool)";

/// The hosts of the store and which of them the pool connects to.
#[derive(Debug)]
pub(crate) struct Primary {
    /// Each host's connect options, the pool's settings applied.
    servers: Vec<PgConnectOptions>,
    names: Vec<String>,
    current: AtomicUsize,
    /// When the pool last moved to another host; shared with the pool's
    /// hooks, which close the connections opened before.
    moved: Arc<Moved>,
    switches: AtomicU64,
    looking: AtomicBool,
    /// When a slow call last started a look.
    slow_look: Mutex<Option<Instant>>,
}

/// When the pool last moved to another host.
#[derive(Debug, Default)]
pub(crate) struct Moved(Mutex<Option<Instant>>);

impl Moved {
    /// Whether a connection of `age` was opened before the last move.
    fn predates(&self, age: Duration) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|at| age > at.elapsed())
    }

    fn now(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }
}

impl Primary {
    /// The hosts of `hosts`, each with `settings` applied; the pool starts
    /// on the first.
    pub(crate) fn new(
        hosts: &Hosts,
        settings: impl Fn(PgConnectOptions) -> PgConnectOptions,
    ) -> Self {
        Self {
            servers: hosts.servers.iter().cloned().map(settings).collect(),
            names: hosts.names.clone(),
            current: AtomicUsize::new(0),
            moved: Arc::default(),
            switches: AtomicU64::new(0),
            looking: AtomicBool::new(false),
            slow_look: Mutex::new(None),
        }
    }

    /// The connect options the pool starts with.
    pub(crate) fn first(&self) -> PgConnectOptions {
        self.servers[0].clone()
    }

    /// `options` with the hooks that keep the pool on writable servers:
    /// a new connection must reach one, and a connection opened before the
    /// last move is closed instead of used or kept.
    pub(crate) fn hooks(&self, options: PgPoolOptions) -> PgPoolOptions {
        let before = Arc::clone(&self.moved);
        let after = Arc::clone(&self.moved);
        options
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    if writable(conn).await? {
                        Ok(())
                    } else {
                        Err(sqlx::Error::Protocol(NOT_WRITABLE.to_owned()))
                    }
                })
            })
            .before_acquire(move |_conn, meta: PoolConnectionMetadata| {
                let keep = !before.predates(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .after_release(move |_conn, meta: PoolConnectionMetadata| {
                let keep = !after.predates(meta.age);
                Box::pin(async move { Ok(keep) })
            })
    }

    /// `host:port` of the server the pool connects to.
    pub(crate) fn name(&self) -> String {
        self.names[self.current.load(Ordering::Acquire)].clone()
    }

    /// Times the pool has moved to another host.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// A call failed with `error`: when it says the server is gone or not
    /// writable, starts a look (unless one is running).
    pub(crate) fn suspect(self: &Arc<Self>, lanes: &Lanes, error: &PgError) {
        if primary_gone(error) {
            self.start_look(lanes);
        }
    }

    /// Runs `call`; if it has not answered within [`SLOW_CALL`], starts a
    /// look (unless a slow call started one within [`SLOW_LOOK_GAP`]) and
    /// goes on waiting for it.
    pub(crate) async fn watch<F: Future>(self: &Arc<Self>, lanes: &Lanes, call: F) -> F::Output {
        let mut call = std::pin::pin!(call);
        match tokio::time::timeout(SLOW_CALL, call.as_mut()).await {
            Ok(answer) => answer,
            Err(_) => {
                if self.slow_look_due() {
                    self.start_look(lanes);
                }
                call.await
            }
        }
    }

    /// Whether a slow call may start a look now (and, if so, notes it).
    fn slow_look_due(&self) -> bool {
        let mut last = self
            .slow_look
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| at.elapsed() < SLOW_LOOK_GAP) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Starts a look for the writable host unless one is running (the
    /// store starts one as it is created, so that its first calls already
    /// reach the primary whichever host the URL names first).
    pub(crate) fn start_look(self: &Arc<Self>, lanes: &Lanes) {
        if self.looking.swap(true, Ordering::AcqRel) {
            return;
        }
        let primary = Arc::clone(self);
        let lanes = lanes.clone();
        tokio::spawn(async move {
            primary.look(&lanes).await;
            primary.looking.store(false, Ordering::Release);
        });
    }

    /// Asks the hosts, the current first, until one answers writable, and
    /// moves the pools to it.
    async fn look(&self, lanes: &Lanes) {
        let until = Instant::now() + LOOK_FOR;
        while Instant::now() < until && !lanes.is_closed() {
            let round = Instant::now();
            let current = self.current.load(Ordering::Acquire);
            let order =
                std::iter::once(current).chain((0..self.servers.len()).filter(|&i| i != current));
            for index in order {
                if probe(&self.servers[index]).await {
                    if index != current {
                        self.move_to(lanes, index);
                    }
                    return;
                }
            }
            tokio::time::sleep_until(round + LOOK_INTERVAL).await;
        }
        tracing::warn!(
            hosts = ?self.names,
            "no PostgreSQL host answered as a writable primary; the next failing call looks again"
        );
    }

    fn move_to(&self, lanes: &Lanes, index: usize) {
        let from = self.name();
        lanes.move_to(&self.servers[index]);
        self.current.store(index, Ordering::Release);
        self.moved.now();
        self.switches.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(from, to = %self.names[index], "the PostgreSQL primary moved; the store follows it");
    }
}

/// Whether the server `conn` reached may be written to.
async fn writable(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(WRITABLE).fetch_one(conn).await
}

/// Whether the server of `options` answers, writable, within
/// [`PROBE_TIMEOUT`].
async fn probe(options: &PgConnectOptions) -> bool {
    let answer = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut conn = PgConnection::connect_with(options).await?;
        let answer = writable(&mut conn).await;
        let _ = conn.close().await;
        answer
    })
    .await;
    matches!(answer, Ok(Ok(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_move_are_closed() {
        let moved = Moved::default();
        assert!(!moved.predates(Duration::from_secs(3600)), "no move yet");
        moved.now();
        assert!(
            moved.predates(Duration::from_secs(3600)),
            "opened an hour ago"
        );
        assert!(!moved.predates(Duration::ZERO), "opened just now");
    }
}
