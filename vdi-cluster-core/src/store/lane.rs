//! Which of a store's connections a call should use: the work that keeps
//! the fleet's liveness apart from everything else.
//!
//! A worker that cannot land its heartbeat within the heartbeat TTL is
//! judged unreachable, and placements on it are refused; the leader that
//! cannot renew its lease loses it. A backend that keeps a bounded number
//! of connections (PostgreSQL's pool) would otherwise make those calls
//! queue behind a surge of students' allocations — exactly when the
//! surge needs the workers most. So this crate names the lane of the work
//! it does ([`Lane::scope`]) and a backend may give the
//! [`Liveness`](Lane::Liveness) lane connections of its own; a backend
//! without such limits (memory, Redis) ignores it.
//!
//! What runs on the liveness lane, decided here:
//!
//! * a worker's heartbeat and registration, every store call of it
//!   (reading the record, the dispatches a report is checked against,
//!   the compare-and-set, adoptions and releases the report proves);
//! * the background loop's take, renewal and release of its lease.
//!
//! Everything else — students' allocations and releases, operators'
//! calls, reconcile passes, health ticks — runs on the
//! [`General`](Lane::General) lane.

use std::future::Future;

tokio::task_local! {
    static LANE: Lane;
}

/// The lane of a store call (see the [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Students' allocations, operators, reconcile: everything that is
    /// not [`Liveness`](Self::Liveness).
    #[default]
    General,
    /// Heartbeats, registrations and the leader lease: calls that must
    /// not wait behind the general lane.
    Liveness,
}

impl Lane {
    /// The lane of the calling task: the innermost [`scope`](Self::scope)'s,
    /// or [`General`](Self::General) outside any.
    pub fn current() -> Self {
        LANE.try_with(|lane| *lane).unwrap_or_default()
    }

    /// Runs `work` with its store calls on this lane (tasks it spawns are
    /// not in the scope).
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        LANE.scope(self, work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scope_names_the_lane_of_its_calls_only() {
        assert_eq!(Lane::current(), Lane::General);
        let inside = Lane::Liveness
            .scope(async {
                tokio::task::yield_now().await;
                let nested = Lane::General.scope(async { Lane::current() }).await;
                (Lane::current(), nested)
            })
            .await;
        assert_eq!(inside, (Lane::Liveness, Lane::General));
        assert_eq!(Lane::current(), Lane::General);
    }
}
