//! Paced starts in placement: every start of a desktop takes a permit of
//! its worker first ([`crate::pacing`], invariant F), and a student whose
//! start must wait is told so instead of being held on an open request.
//!
//! # A start's permit
//!
//! Compare-and-reserve asks for a permit on the worker under the new
//! dispatch's id ([`PermitRequest`]), with the limit core decides from the
//! worker's configured concurrency and its last starts ([`start_limit`]),
//! as this replica keeps them (`limits`: read from the store at most every
//! `pacing.inputs_max_age`); the store grants it in the same atomic step
//! when fewer than the limit are held and nobody waits. The confirmation
//! gives it back with the start's sample, and an undo without one, in
//! their own step ([`PermitReturn`]). So a start that finds a free permit
//! costs no store call besides its placement's reserve and confirm.
//!
//! A reservation made without a permit (the worker at its limit, or
//! starts waiting there) takes the slow path: `start_on_worker` asks the
//! store for one under the dispatch's id. While the answer is "waiting",
//! it asks again every `pacing.poll` (which renews its place's lease); after
//! [`permit_wait_bound`](crate::service::ServiceConfig::permit_wait_bound)
//! it gives up its place and the reservation, and the placement tries the
//! next worker as after a failed call. A start that waited reads its
//! reservation once more when the permit comes: if the student released
//! the session meanwhile, it gives the permit back, calls no worker and
//! places nothing (`Started::Withdrawn`). Either way the permit is given
//! back by the step that follows the worker's call — the confirmation,
//! with the call's duration and the starts in flight as a sample, or the
//! undo — which gives it back even when the reservation is gone.
//!
//! # Answering before the desktop is up
//!
//! [`request_session_paced`](Placement::request_session_paced) runs the
//! request in a task of its own, told through a task-local notifier the
//! first time its start waits for a permit: it answers [`Starting`] then
//! (the worker, the estimate from [`estimate_ready`]) and the task goes
//! on — waits, starts, confirms — after the answer. The student's reads
//! ([`session_state`](Placement::session_state)) show the reserved
//! dispatch as starting, with an estimate from the worker's queue, until
//! it is active. A replica that dies with starts waiting leaves
//! reservations that reconcile reclaims after `allocate_timeout` and
//! permits and places whose leases end; the student's next request places
//! the session anew.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Placement;
use super::request::{SessionRequest, Starting};
use crate::dispatch::{Dispatch, DispatchState};
use crate::error::{Error, Result};
use crate::ids::{SessionKey, WorkerId};
use crate::pacing::{
    PermitAnswer, PermitRequest, PermitReturn, StartQueue, StartSample, StartStats, estimate_ready,
    expected_start, start_limit, start_stats,
};
use crate::scheduler::Constraints;
use crate::time::Timestamp;
use crate::worker::WorkerRecord;

tokio::task_local! {
    /// Set on a paced request's task: told when its start waits.
    static NOTIFIER: Notifier;
}

/// Tells the request that spawned a start, once, that it waits.
#[derive(Debug, Clone)]
struct Notifier(Arc<Mutex<Option<oneshot::Sender<Starting>>>>);

impl Notifier {
    /// Whether a paced request waits to be told (reading the queue for
    /// an estimate nobody hears is skipped).
    fn listening() -> bool {
        NOTIFIER
            .try_with(|n| n.0.lock().is_ok_and(|s| s.is_some()))
            .unwrap_or(false)
    }

    fn tell(starting: &Starting) {
        let _ = NOTIFIER.try_with(|n| {
            let sender = n.0.lock().ok().and_then(|mut s| s.take());
            if let Some(sender) = sender {
                let _ = sender.send(starting.clone());
            }
        });
    }
}

/// A worker's paced starts as operators read them.
#[derive(Debug, Clone, PartialEq)]
pub struct StartPacing {
    /// The worker.
    pub worker: WorkerId,
    /// Its configured start concurrency (the agent's, or from its slots).
    pub configured: u32,
    /// The limit now, adapted from its last starts.
    pub limit: u32,
    /// Starts holding a permit now.
    pub in_flight: u32,
    /// Starts waiting for one.
    pub waiting: u32,
    /// Its last starts' figures.
    pub stats: StartStats,
    /// Starts a second at the limit: `limit` ÷ the expected start time.
    pub rate_per_sec: f64,
}

/// A start permit held for a worker's call.
#[derive(Debug)]
pub(crate) struct Permit {
    worker: WorkerId,
    id: String,
    in_flight: u32,
    /// What its start's sample is measured from: the grant, until the
    /// worker's call begins ([`calling`](Self::calling)).
    measured_from: Timestamp,
    /// Whether the start waited in the worker's queue for it.
    pub(crate) waited: bool,
}

impl Permit {
    /// The permit compare-and-reserve granted with `reserved`, with
    /// `in_flight` permits then held on its worker.
    pub(crate) fn with_reservation(reserved: &Dispatch, in_flight: u32) -> Self {
        Self {
            worker: reserved.worker.clone(),
            id: reserved.id.to_string(),
            in_flight,
            measured_from: reserved.reserved_at,
            waited: false,
        }
    }

    /// The worker's call for this permit's start begins at `now`: the
    /// start's sample is that call's time alone. The store's steps before
    /// it (the reservation that granted the permit, a wait for it) are no
    /// measure of the worker: counted in, a store slow to answer (failing
    /// over, its connections queued) would bring the worker's start limit
    /// down to 1, and keep it there while the store stays slow.
    pub(crate) fn calling(&mut self, now: Timestamp) {
        self.measured_from = now;
    }
}

/// A start that did not get its permit in time.
#[derive(Debug)]
pub(crate) struct PermitTimeout;

impl Placement {
    /// The worker's start limit now, from the inputs this replica keeps
    /// (read from the store only when they are older than
    /// `pacing.inputs_max_age`: see `limits`).
    async fn limit_of(&self, record: &WorkerRecord) -> Result<u32> {
        let max_age = self.shared.config.pacing.inputs_max_age;
        let samples = match self.start_inputs.fresh(&record.id, max_age) {
            Some(samples) => samples,
            None => Arc::new(self.read_queue(&record.id).await?.samples),
        };
        Ok(self.limit_from(record, &samples))
    }

    fn limit_from(&self, record: &WorkerRecord, samples: &[StartSample]) -> u32 {
        start_limit(
            record.start_concurrency(),
            samples,
            self.shared.config.pacing_target(),
        )
    }

    /// The worker's queue read from the store now (its samples kept as
    /// this replica's inputs).
    async fn read_queue(&self, worker: &WorkerId) -> Result<StartQueue> {
        let queue = self
            .shared
            .store
            .start_queue(worker, self.shared.clock.now())
            .await?;
        self.start_inputs.read(worker, &queue.samples);
        Ok(queue)
    }

    /// The worker's start limit and its queue, both read fresh.
    async fn queue_and_limit(&self, record: &WorkerRecord) -> Result<(u32, StartQueue)> {
        let queue = self.read_queue(&record.id).await?;
        Ok((self.limit_from(record, &queue.samples), queue))
    }

    /// What compare-and-reserve on `record`'s worker at `now` asks for
    /// with the slot: a start permit when one is free, under the limit
    /// core decides; `None` when starts are not paced.
    pub(crate) async fn permit_request(
        &self,
        record: &WorkerRecord,
        now: Timestamp,
    ) -> Result<Option<PermitRequest>> {
        if !self.shared.config.pacing.enabled {
            return Ok(None);
        }
        Ok(Some(PermitRequest {
            limit: self.limit_of(record).await?,
            now,
            until: now.plus(self.shared.config.permit_lease()),
        }))
    }

    /// Takes a start permit on `record`'s worker for the start `id` (a
    /// dispatch's id), waiting in its queue as the module's docs say;
    /// `Ok(None)` when starts are not paced.
    pub(crate) async fn take_permit(
        &self,
        record: &WorkerRecord,
        id: &str,
        since: Timestamp,
    ) -> Result<std::result::Result<Option<Permit>, PermitTimeout>> {
        let pacing = &self.shared.config.pacing;
        if !pacing.enabled {
            return Ok(Ok(None));
        }
        let bound = tokio::time::Instant::now() + self.shared.config.permit_wait_bound();
        let limit = self.limit_of(record).await?;
        let mut told = !Notifier::listening();
        let mut waited = false;
        loop {
            let now = self.shared.clock.now();
            let until = now.plus(self.shared.config.permit_lease());
            match self
                .shared
                .store
                .acquire_start_permit(&record.id, id, limit, now, until)
                .await?
            {
                PermitAnswer::Granted { in_flight } => {
                    return Ok(Ok(Some(Permit {
                        worker: record.id.clone(),
                        id: id.to_owned(),
                        in_flight,
                        measured_from: now,
                        waited,
                    })));
                }
                PermitAnswer::Waiting { position, .. } => {
                    waited = true;
                    if !told {
                        told = true;
                        // The slow path: the estimate reads the queue.
                        let queue = self.read_queue(&record.id).await?;
                        Notifier::tell(&Starting {
                            worker: record.id.clone(),
                            position: Some(position),
                            estimated_ready: estimate_ready(
                                &queue,
                                Some(position),
                                None,
                                limit,
                                now,
                            ),
                            since,
                        });
                    }
                }
            }
            if tokio::time::Instant::now() >= bound {
                self.shared
                    .store
                    .release_start_permit(&record.id, id, None, pacing.samples_kept)
                    .await?;
                tracing::warn!(worker = %record.id, start = id, "no start permit in time; trying the next worker");
                return Ok(Err(PermitTimeout));
            }
            tokio::time::sleep(pacing.poll).await;
        }
    }

    /// What gives `permit` back: a call that `succeeded` leaves its
    /// duration as a sample of the worker's starts. The step that ends
    /// the reservation carries it (`confirm`, `undo`), or
    /// [`give_back`](Self::give_back) does.
    pub(crate) fn return_of(&self, permit: &Permit, succeeded: bool) -> PermitReturn {
        let took = self.shared.clock.now().since(permit.measured_from);
        PermitReturn {
            worker: permit.worker.clone(),
            sample: succeeded.then(|| StartSample {
                millis: u32::try_from(took.as_millis()).unwrap_or(u32::MAX),
                in_flight: permit.in_flight,
            }),
            keep: self.shared.config.pacing.samples_kept,
        }
    }

    /// This replica's own start, given back by a store step that
    /// succeeded: its sample moves the limit's inputs at once.
    pub(crate) fn returned(&self, given: &PermitReturn) {
        if let Some(sample) = given.sample {
            self.start_inputs
                .own_start(&given.worker, sample, given.keep);
        }
    }

    /// Gives `permit` back on its own; a call that `succeeded` leaves its
    /// duration as a sample of the worker's starts. Best effort: a permit
    /// not given back ends with its lease.
    pub(crate) async fn give_back(&self, permit: Option<Permit>, succeeded: bool) {
        let Some(permit) = permit else { return };
        let given = self.return_of(&permit, succeeded);
        match self
            .shared
            .store
            .release_start_permit(&given.worker, &permit.id, given.sample, given.keep)
            .await
        {
            Ok(_) => self.returned(&given),
            Err(e) => {
                tracing::warn!(worker = %permit.worker, error = %e, "start permit not given back; its lease ends it");
            }
        }
    }

    /// Takes up to `wanted` start permits on `record`'s worker for
    /// prewarmed machines: waits for the first as a placement does, takes
    /// the others only while they are free at once. `None` when starts are
    /// not paced; empty when the first did not come in time.
    pub(crate) async fn prewarm_permits(
        &self,
        record: &WorkerRecord,
        wanted: u32,
    ) -> Result<Option<Vec<Permit>>> {
        if !self.shared.config.pacing.enabled {
            return Ok(None);
        }
        let now = self.shared.clock.now();
        let prewarm_id = || format!("prewarm:{}", uuid::Uuid::new_v4());
        let Ok(Some(first)) = self.take_permit(record, &prewarm_id(), now).await? else {
            return Ok(Some(Vec::new()));
        };
        let limit = self.limit_of(record).await?;
        let mut permits = vec![first];
        while permits.len() < wanted as usize {
            let id = prewarm_id();
            let until = now.plus(self.shared.config.permit_lease());
            match self
                .shared
                .store
                .acquire_start_permit(&record.id, &id, limit, now, until)
                .await?
            {
                PermitAnswer::Granted { in_flight } => permits.push(Permit {
                    worker: record.id.clone(),
                    id,
                    in_flight,
                    measured_from: now,
                    waited: false,
                }),
                PermitAnswer::Waiting { .. } => {
                    let kept = self.shared.config.pacing.samples_kept;
                    self.shared
                        .store
                        .release_start_permit(&record.id, &id, None, kept)
                        .await?;
                    break;
                }
            }
        }
        Ok(Some(permits))
    }

    /// Holds the permits of prewarmed machines, which the worker starts
    /// after its call answers, for as long as a start is expected to take
    /// on it, then gives them back (no sample: the call's time is not the
    /// start's). Their lease bounds this if the replica stops first.
    pub(crate) fn hold_while_starting(&self, permits: Vec<Permit>, queue_of: &StartQueue) {
        let Some(last) = permits.last() else { return };
        let hold = expected_start(&queue_of.samples, last.in_flight)
            .min(self.shared.config.permit_lease());
        let store = Arc::clone(&self.shared.store);
        let kept = self.shared.config.pacing.samples_kept;
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            for p in permits {
                let _ = store
                    .release_start_permit(&p.worker, &p.id, None, kept)
                    .await;
            }
        });
    }

    /// A worker's start queue as last stored (for a prewarm's hold).
    pub(crate) async fn start_queue_of(&self, worker: &WorkerId) -> Result<StartQueue> {
        self.read_queue(worker).await
    }

    /// `record`'s worker's start pacing now.
    pub async fn start_pacing(&self, record: &WorkerRecord) -> Result<StartPacing> {
        let (limit, queue) = self.queue_and_limit(record).await?;
        let expected = expected_start(&queue.samples, limit).as_secs_f64();
        Ok(StartPacing {
            worker: record.id.clone(),
            configured: record.start_concurrency(),
            limit,
            in_flight: u32::try_from(queue.held.len()).unwrap_or(u32::MAX),
            waiting: u32::try_from(queue.waiting.len()).unwrap_or(u32::MAX),
            stats: start_stats(&queue.samples),
            rate_per_sec: if expected > 0.0 {
                f64::from(limit) / expected
            } else {
                0.0
            },
        })
    }

    /// A reserved dispatch as its student sees it while pacing: where its
    /// start stands and when the desktop should be ready.
    pub(crate) async fn starting(&self, reserved: &Dispatch) -> Result<Starting> {
        let now = self.shared.clock.now();
        let id = reserved.id.to_string();
        let (limit, queue) = match self.shared.store.worker(&reserved.worker).await? {
            Some(snapshot) => self.queue_and_limit(&snapshot.record).await?,
            None => (1, StartQueue::default()),
        };
        let position = queue.position(&id);
        let estimated_ready = match (position, queue.held_since(&id)) {
            (Some(_), _) | (None, Some(_)) => {
                estimate_ready(&queue, position, queue.held_since(&id), limit, now)
            }
            // Not asked yet, or its call is over and it confirms.
            (None, None) => expected_start(&queue.samples, limit)
                .saturating_sub(now.since(reserved.reserved_at)),
        };
        Ok(Starting {
            worker: reserved.worker.clone(),
            position,
            estimated_ready,
            since: reserved.reserved_at,
        })
    }

    /// Whether a request of `key` may be answered before its desktop is
    /// up: starts are paced, and the exam is booked or the client asked
    /// (`Prefer: respond-async`).
    async fn may_answer_early(&self, key: &SessionKey, prefer_async: bool) -> Result<bool> {
        if !self.shared.config.pacing.enabled {
            return Ok(false);
        }
        Ok(prefer_async || self.cached_calendar().await?.get(&key.exam_id).is_some())
    }

    /// The session API's allocate with paced starts: as
    /// [`request_session`](Self::request_session), but when the start must
    /// wait for a permit and the exam is booked (or `prefer_async`), it
    /// answers [`SessionRequest::Starting`] at once and the start goes on
    /// after the answer (see the module's docs).
    pub async fn request_session_paced(
        self: &Arc<Self>,
        key: SessionKey,
        constraints: Constraints,
        prefer_async: bool,
    ) -> Result<SessionRequest> {
        if !self.may_answer_early(&key, prefer_async).await? {
            return self.request_session(key, constraints).await;
        }
        if let Some(d) = self.shared.store.dispatch(&key).await?
            && d.state == DispatchState::Reserved
        {
            return Ok(SessionRequest::Starting(self.starting(&d).await?));
        }
        let (sender, waits) = oneshot::channel();
        let notifier = Notifier(Arc::new(Mutex::new(Some(sender))));
        let this = Arc::clone(self);
        let mut task = tokio::spawn(NOTIFIER.scope(notifier, async move {
            this.request_session(key, constraints).await
        }));
        tokio::select! {
            biased;
            done = &mut task => done.map_err(Error::unavailable)?,
            Ok(starting) = waits => Ok(SessionRequest::Starting(starting)),
        }
    }
}
