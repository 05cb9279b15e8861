//! The background loop: health events and periodic reconcile, on one
//! replica at a time.
//!
//! # Timing
//!
//! The loop keeps two clocks apart. Every `tick` it tries to take or renew
//! the [`BACKGROUND_LEASE`] and, while it holds it, turns availability
//! changes into events. Reconcile is scheduled by **deadline**, not by
//! counting ticks: the first pass is due `reconcile_every` after the lease
//! was taken, and each next one `reconcile_every` after the previous
//! deadline, on its own timer. A pass therefore starts when it is due (or
//! as soon as a health step already under way has finished), not at the
//! first tick after it: counting ticks made a 10 s interval with 5 s ticks
//! come 10 or 15 s apart, and a 3 s one 6 s apart, because the elapsed time
//! measured after a tick's store steps fell just short of the interval.
//!
//! Beside each health step, as webhook deliveries do, a task of its own
//! removes the rehearsal records of exams the calendar no longer holds.
//!
//! A pass is a sequence of bounded steps
//! ([`Operations::reconcile_step`](crate::service::Operations::reconcile_step)),
//! resumed from the cursor saved beside the lease: while a pass has not
//! reached the end of the dispatch keyspace, its next step follows
//! `step_pause` after the previous one (health ticks run in between).
//! A pass that runs past the next deadline is followed by the next pass at
//! once; steps never overlap, and health steps wait while a step runs.
//!
//! # Renewal
//!
//! A pass runs alongside a renewal of the lease every `tick`, so a pass
//! longer than `lease_ttl` keeps the lease. When a renewal answers that
//! another holder has it (or hands out a new token), the pass is abandoned
//! between two store steps and the replica stops leading. Taking, renewing
//! and giving up the lease run on the store's [liveness
//! lane](crate::store::Lane::Liveness), so a renewal does not wait behind
//! students' allocations for a connection.
//!
//! # Fencing
//!
//! Every removal and orphan mark of a step, and the checkpoint it saves,
//! carries the lease (see
//! [`Operations::reconcile_leased`](crate::service::Operations::reconcile_leased)): the backend checks, in the same
//! atomic step as the write, that the lease is still held with the same
//! token, and refuses with [`Error::Fenced`](crate::Error::Fenced)
//! otherwise, which ends the pass and the replica's leadership. A deposed
//! leader's late removal — after a pause, a lost renewal or a partition —
//! changes nothing. The pass's other writes are safe late by construction
//! (see the `reconcile` module).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep_until};

use super::Operations;
use super::reconcile::HealthMonitor;
use crate::events::EventKind;
use crate::outbox::alerts;
use crate::policy::AdminPolicy;
use crate::store::{Lane, LeaderLease, Lease};
use crate::time::Timestamp;

/// The lease that elects the replica running background jobs.
pub const BACKGROUND_LEASE: &str = "background";

/// Timing of [`run_background`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackgroundConfig {
    /// How often health is observed (and the lease renewed): 5 s.
    pub tick: Duration,
    /// Lease lifetime; must exceed `tick` comfortably: 30 s.
    pub lease_ttl: Duration,
    /// Reconcile period: 60 s (the exam platform's registry).
    pub reconcile_every: Duration,
    /// `WORKER_DISPATCH_CLEANUP_ENABLED`: run periodic reconcile at all.
    pub reconcile_enabled: bool,
    /// Pause between two steps of a pass that has not reached the end of
    /// the dispatch keyspace: 1 s (health ticks run in between).
    pub step_pause: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
            reconcile_every: Duration::from_secs(60),
            reconcile_enabled: true,
            step_pause: Duration::from_secs(1),
        }
    }
}

/// Runs until `shutdown` completes. On each tick the replica tries to hold
/// the background lease; while it does, it turns availability changes into
/// events, completes drains, and reconciles when a pass is due (see the
/// module docs for timing, renewal and fencing). On shutdown it gives the
/// lease up so another replica takes over at once.
pub async fn run_background(
    service: Arc<Operations>,
    config: BackgroundConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut ticker = interval(config.tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut monitor = HealthMonitor::default();
    let mut held: Option<Lease> = None;
    // The next step is due at `due`; the pass under way was due at
    // `pass_due` (the next pass is due one interval after it).
    let mut due = Instant::now() + config.reconcile_every;
    let mut pass_due = due;
    let replica = service.shared.config.replica_id.clone();
    let mut delivering: Option<tokio::task::JoinHandle<()>> = None;
    let mut sweeping: Option<tokio::task::JoinHandle<()>> = None;
    let mut outage = Outage::default();
    loop {
        let leading = config.reconcile_enabled && held.is_some();
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = sleep_until(due), if leading => {
                let Some(lease) = held.clone() else { continue };
                let step = service.reconcile_step(&lease);
                let mut pass_goes_on = false;
                match while_holding(&*service.shared.store, &lease, &config, step).await {
                    Some(Ok(report)) => {
                        pass_goes_on = !report.pass.complete;
                        tracing::info!(?report, "reconcile step");
                    }
                    Some(Err(e @ crate::Error::Fenced { .. })) => {
                        tracing::warn!(replica = %replica, error = %e, "a reconcile write was fenced off: no longer leading");
                        held = None;
                        monitor.reset();
                    }
                    Some(Err(e)) => {
                        // A pass under way when the store went away sees
                        // the outage first: it counts as one the leader saw.
                        if matches!(e, crate::Error::Unavailable { .. }) {
                            outage.failed(service.shared.clock.now(), &e);
                        }
                        tracing::warn!(error = %e, "reconcile failed");
                    }
                    None => {
                        tracing::warn!(replica = %replica, "lost the background lease during a reconcile pass; abandoned it");
                        held = None;
                        monitor.reset();
                    }
                }
                if pass_goes_on {
                    due = Instant::now() + config.step_pause;
                } else {
                    due = next_due(pass_due, config.reconcile_every, Instant::now());
                    pass_due = due;
                }
            }
            _ = ticker.tick() => {
                let store = &service.shared.store;
                let take = store.try_acquire(BACKGROUND_LEASE, &replica, config.lease_ttl);
                match Lane::Liveness.scope(take).await {
                    Ok(Some(lease)) => {
                        if let Some((since, kind)) = outage.recovered(service.shared.clock.now())
                            && let Err(e) = service.backend_recovered(kind, since, &lease).await
                        {
                            tracing::warn!(error = %e, "could not write backend.degraded to the outbox");
                        }
                        if held.as_ref().is_none_or(|h| h.token != lease.token) {
                            tracing::info!(replica = %replica, token = lease.token, "holding the background lease");
                            due = Instant::now() + config.reconcile_every;
                            pass_due = due;
                        }
                        held = Some(lease.clone());
                        if let Err(e) = tick(&service, &mut monitor, &lease).await {
                            tracing::warn!(error = %e, "health tick failed");
                            // Observe afresh: the catch-up writes what this
                            // tick could not (under the same keys).
                            monitor.reset();
                        }
                        if delivering.as_ref().is_none_or(|d| d.is_finished()) {
                            delivering = spawn_delivery(&service);
                        }
                        if sweeping.as_ref().is_none_or(|d| d.is_finished()) {
                            sweeping = Some(spawn_rehearsal_sweep(&service));
                        }
                    }
                    Ok(None) => {
                        // The leader reports outages it saw itself.
                        outage.recovered(service.shared.clock.now());
                        if held.take().is_some() {
                            tracing::info!(replica = %replica, "lost the background lease");
                        }
                        monitor.reset();
                    }
                    Err(e) => {
                        outage.failed(service.shared.clock.now(), &e);
                        tracing::warn!(error = %e, "cannot reach the store for the background lease");
                        held = None;
                        monitor.reset();
                    }
                }
            }
        }
    }
    for task in [delivering, sweeping].into_iter().flatten() {
        task.abort();
    }
    if let Some(lease) = held
        && let Err(e) = Lane::Liveness
            .scope(service.shared.store.release_lease(&lease))
            .await
    {
        tracing::warn!(error = %e, "could not give up the background lease");
    }
}

/// The store's failures as the background loop sees them, until it
/// answers again (`backend.degraded`).
#[derive(Debug, Default)]
struct Outage {
    /// The first failure, how many, and the last error.
    failing: Option<(Timestamp, u32, String)>,
}

impl Outage {
    fn failed(&mut self, now: Timestamp, error: &crate::Error) {
        let (_, failures, last) = self.failing.get_or_insert_with(|| (now, 0, String::new()));
        *failures += 1;
        *last = error.to_string();
    }

    /// The start and event of the outage that ends at `now`, if there
    /// was one.
    fn recovered(&mut self, now: Timestamp) -> Option<(Timestamp, EventKind)> {
        let (since, failures, last_error) = self.failing.take()?;
        let kind = EventKind::BackendDegraded {
            since,
            until: now,
            failures,
            last_error,
        };
        Some((since, kind))
    }
}

impl Operations {
    /// Writes an outage of the store this leader saw, now that it answers
    /// again, fenced by `lease`, under a key naming the outage's start.
    async fn backend_recovered(
        &self,
        kind: EventKind,
        since: Timestamp,
        lease: &Lease,
    ) -> crate::Result<()> {
        let key = alerts::observed_key(&kind, since.as_millis());
        self.shared.record_observed(kind, key, Some(lease)).await
    }
}

/// The deadline after `due` (which has passed): one interval later, or now
/// if the pass ran past that too (the missed deadlines are not made up).
fn next_due(due: Instant, every: Duration, now: Instant) -> Instant {
    (due + every).max(now)
}

/// Runs `work` while renewing `lease` every `config.tick` for
/// `config.lease_ttl`. `None` (and `work` is dropped between two of its
/// steps) as soon as a renewal answers that the lease is held by another
/// holder or under another token. A renewal the store cannot answer is
/// retried at the next tick: the work's writes are fenced, so they are
/// refused by the store if the lease lapsed meanwhile.
pub(crate) async fn while_holding<S, T>(
    store: &S,
    lease: &Lease,
    config: &BackgroundConfig,
    work: impl Future<Output = T>,
) -> Option<T>
where
    S: LeaderLease + ?Sized,
{
    tokio::pin!(work);
    let mut renew = interval_at(Instant::now() + config.tick, config.tick);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            out = &mut work => return Some(out),
            _ = renew.tick() => {
                let renewal = store.try_acquire(&lease.name, &lease.holder, config.lease_ttl);
                match Lane::Liveness.scope(renewal).await {
                    Ok(Some(renewed)) if renewed.token == lease.token => {}
                    Ok(_) => return None,
                    Err(e) => tracing::warn!(error = %e, "could not renew the background lease during a pass"),
                }
            }
        }
    }
}

/// One delivery step in a task of its own (sends must not hold up health
/// ticks), if this replica sends webhooks.
fn spawn_delivery(service: &Arc<Operations>) -> Option<tokio::task::JoinHandle<()>> {
    let sender = Arc::clone(service.webhook_sender()?);
    let service = Arc::clone(service);
    Some(tokio::spawn(async move {
        match service.deliver_due(&*sender).await {
            Ok(report) if report.leased > 0 => tracing::info!(?report, "webhook deliveries"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "webhook delivery step failed"),
        }
    }))
}

/// The removal of the rehearsals a cancel left
/// ([`Exams::remove_cancelled_rehearsals`](crate::service::Exams::remove_cancelled_rehearsals)),
/// in a task of its own: a compare-and-delete needs no fence, and the
/// health step and a due pass do not wait for it.
fn spawn_rehearsal_sweep(service: &Arc<Operations>) -> tokio::task::JoinHandle<()> {
    let service = Arc::clone(service);
    tokio::spawn(async move {
        match service.exams.remove_cancelled_rehearsals().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed the rehearsals of cancelled exams"),
            Err(e) => {
                tracing::warn!(error = %e, "could not remove the rehearsals of cancelled exams")
            }
        }
    })
}

async fn tick(
    service: &Operations,
    monitor: &mut HealthMonitor,
    lease: &Lease,
) -> crate::Result<()> {
    let views = service.shared.worker_views().await?;
    let now = service.shared.clock.now();
    let episode = |kind: &EventKind| {
        let episode = views
            .iter()
            .find(|v| matches!(kind, EventKind::WorkerAvailability { worker, .. } if worker == v.id()))
            .and_then(|v| v.record.last_heartbeat_at)
            .map_or(0, Timestamp::as_millis);
        alerts::observed_key(kind, episode)
    };
    let fence = Some(lease);
    if monitor.is_fresh() {
        for kind in HealthMonitor::catch_up(&views, now) {
            let key = episode(&kind);
            service.shared.append_observed(&kind, key, fence).await?;
        }
    }
    for kind in monitor.observe(&views, now) {
        let key = episode(&kind);
        service.shared.record_observed(kind, key, fence).await?;
    }
    for view in views
        .iter()
        .filter(|v| matches!(v.record.policy, AdminPolicy::Draining { .. }))
    {
        service.fleet.observe_policy(view).await?;
    }
    let fired = service.fleet.fire_due_scheduled(fence).await?;
    if fired > 0 {
        tracing::info!(fired, "scheduled actions carried out");
    }
    service.exams.evaluate_exam_risks().await?;
    let rehearsed = service.exams.start_due_rehearsals().await?;
    if rehearsed > 0 {
        tracing::info!(rehearsed, "exams rehearsed");
    }
    service.exams.start_due_prewarms().await?;
    service.exams.keep_prewarm_targets(fence).await?;
    service.exams.release_ended_prewarms().await?;
    let expiry = service.exams.expire_sessions(fence).await?;
    if expiry != crate::service::exams::ExpiryTick::default() {
        tracing::info!(?expiry, "sessions at their end");
    }
    service.exams.watch_queues(fence).await?;
    let capacity = service.tend_capacity().await?;
    if capacity != super::CapacityTick::default() {
        tracing::info!(?capacity, "capacity on schedule tended");
    }
    let purged = service.purge_old_deliveries().await?;
    if purged > 0 {
        tracing::info!(purged, "deleted deliveries past the retention");
    }
    let queues = service.exams.tend_queues().await?;
    if queues != crate::service::exams::QueueTick::default() {
        tracing::info!(?queues, "waiting rooms tended");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_reported_once_on_recovery_with_its_extent() {
        let mut outage = Outage::default();
        assert!(
            outage.recovered(Timestamp(1)).is_none(),
            "no outage, no event"
        );
        let down = crate::Error::unavailable(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ));
        outage.failed(Timestamp(10), &down);
        outage.failed(Timestamp(15), &down);
        let (since, kind) = outage.recovered(Timestamp(20)).expect("an outage");
        assert_eq!(since, Timestamp(10));
        let EventKind::BackendDegraded {
            since,
            until,
            failures,
            last_error,
        } = kind
        else {
            panic!("{kind:?}");
        };
        assert_eq!((since, until, failures), (Timestamp(10), Timestamp(20), 2));
        assert!(last_error.contains("connection refused"), "{last_error}");
        assert!(outage.recovered(Timestamp(30)).is_none(), "reported once");
    }
}
