//! Capacity on schedule, on the leader's tick: store the capacity requests
//! the calendar needs, call the scale hook for each step that is due, and
//! give the workers back once no booked exam needs them (see the `scale`
//! module for the decisions and the request's life).
//!
//! A request is stored by insert-if-absent under an id every replica
//! derives alike, and each call of the hook is claimed first by a
//! compare-and-set on the request's version that also sets when the call
//! may be repeated: of replicas racing on one step exactly one calls the
//! hook, and a leader that dies between the claim and the hook's answer
//! leaves a request the next leader retries under the same id once the
//! wait has passed.

use std::sync::Arc;

use super::Operations;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::exam::{Capacity, Exam};
use crate::outbox::alerts;
use crate::policy::AdminAction;
use crate::scale::{
    CapacityRequest, CapacityState, Fleet, ScaleDown, ScaleHook, ScaleUp, Step,
    StoredCapacityRequest, needed_by, next_step, plan_requests, retry_after,
};
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// What one step of capacity on schedule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapacityTick {
    /// Requests stored.
    pub stored: u32,
    /// Calls of the hook (`scale_up` and `scale_down`).
    pub hook_calls: u32,
    /// Requests that changed state.
    pub changed: u32,
}

/// What a step reads once.
struct Scene<'a> {
    views: &'a [WorkerView],
    exams: &'a [Exam],
    capacity: &'a Capacity,
    now: Timestamp,
}

impl Operations {
    /// Every capacity request, by id.
    pub async fn capacity_requests(&self) -> Result<Vec<CapacityRequest>> {
        let stored = self.shared.store.capacity_requests().await?;
        Ok(stored.into_iter().map(|s| s.request).collect())
    }

    /// One step of capacity on schedule (the leader's tick calls it; any
    /// replica may, the store's atomic steps keep it exactly-once): stores
    /// the requests [`plan_requests`] finds, then takes each request's
    /// [`next_step`]. Nothing without a scale hook.
    pub async fn tend_capacity(&self) -> Result<CapacityTick> {
        let mut tick = CapacityTick::default();
        let Some(hook) = self.scale_hook.clone() else {
            return Ok(tick);
        };
        let now = self.shared.clock.now();
        let views = self.shared.worker_views().await?;
        let calendar = self.shared.store.exam_calendar().await?;
        let capacity = Capacity::of_workers(&views, self.shared.config.exam_headroom_percent);
        let known = self.capacity_requests().await?;
        let lead = self.shared.config.scale_lead;
        for request in plan_requests(&calendar.exams, &capacity, &known, now, lead) {
            if self
                .shared
                .store
                .insert_capacity_request(&request, &[])
                .await?
            {
                tick.stored += 1;
                self.audit_request("capacity-request", &request).await?;
            }
        }
        let scene = Scene {
            views: &views,
            exams: &calendar.exams,
            capacity: &capacity,
            now,
        };
        for stored in self.shared.store.capacity_requests().await? {
            self.step_request(&hook, stored, &scene, &mut tick).await?;
        }
        Ok(tick)
    }

    async fn step_request(
        &self,
        hook: &Arc<dyn ScaleHook>,
        stored: StoredCapacityRequest,
        scene: &Scene<'_>,
        tick: &mut CapacityTick,
    ) -> Result<()> {
        let StoredCapacityRequest { request, version } = stored;
        let still_needed = || {
            let rest: Vec<WorkerView> = scene
                .views
                .iter()
                .filter(|v| !request.workers.contains(v.id()))
                .cloned()
                .collect();
            let without = Capacity::of_workers(&rest, self.shared.config.exam_headroom_percent);
            !needed_by(scene.exams, scene.capacity, &without, scene.now).is_empty()
        };
        let fleet = Fleet { views: scene.views };
        let now = scene.now;
        let changed = match next_step(&request, fleet, still_needed, now) {
            Step::Wait => false,
            Step::Issue => {
                let Some(claim) = self.claim(&request, version).await? else {
                    return Ok(());
                };
                tick.hook_calls += 1;
                let order = ScaleUp {
                    request: request.id.clone(),
                    slots: request.slots,
                    constraints: request.constraints.clone(),
                    deadline: request.deadline,
                    exams: request.exams.clone(),
                };
                match hook.scale_up(&order).await {
                    Ok(workers) => {
                        let mut done = claim.moved_to(CapacityState::Requested, now);
                        done.workers = workers;
                        let event = EventKind::CapacityRequested {
                            request: done.id.clone(),
                            slots: done.slots,
                            exams: done.exams.clone(),
                            workers: done.workers.clone(),
                            deadline: done.deadline,
                        };
                        self.advance(&done, version + 1, Some(event), "capacity-requested")
                            .await?
                    }
                    Err(e) => self.failed(claim, version + 1, e.0).await?,
                }
            }
            Step::Joined => {
                let done = request.moved_to(CapacityState::Joined, now);
                self.advance(&done, version, None, "capacity-joined")
                    .await?
            }
            Step::Missing => {
                let done = request.moved_to(CapacityState::Missing, now);
                let joined = |w: &&crate::ids::WorkerId| {
                    scene
                        .views
                        .iter()
                        .any(|v| v.id() == *w && v.record.last_heartbeat_at.is_some())
                };
                let event = EventKind::CapacityMissing {
                    request: done.id.clone(),
                    slots: done.slots,
                    exams: done.exams.clone(),
                    missing: done
                        .workers
                        .iter()
                        .filter(|w| !joined(w))
                        .cloned()
                        .collect(),
                };
                self.advance(&done, version, Some(event), "capacity-missing")
                    .await?
            }
            Step::Release => {
                for worker in &request.workers {
                    self.drain_quietly(worker).await;
                }
                let done = request.moved_to(CapacityState::Releasing, now);
                self.advance(&done, version, None, "capacity-release")
                    .await?
            }
            Step::Stop => {
                let Some(claim) = self.claim(&request, version).await? else {
                    return Ok(());
                };
                if !request.workers.is_empty() {
                    tick.hook_calls += 1;
                    let order = ScaleDown {
                        request: request.id.clone(),
                        workers: request.workers.clone(),
                    };
                    if let Err(e) = hook.scale_down(&order).await {
                        self.failed(claim, version + 1, e.0).await?;
                        return Ok(());
                    }
                }
                for worker in &request.workers {
                    match self.fleet.remove_worker(worker, "system").await {
                        Ok(()) | Err(Error::WorkerNotFound(_)) => {}
                        Err(e) => {
                            tracing::warn!(%worker, error = %e, "released worker not removed")
                        }
                    }
                }
                let done = claim.moved_to(CapacityState::Released, now);
                self.advance(&done, version + 1, None, "capacity-released")
                    .await?
            }
        };
        tick.changed += u32::from(changed);
        Ok(())
    }

    /// Claims the next call of the hook for `request`: its attempt counted
    /// and the next one put off, by compare-and-set. `None` when another
    /// replica claimed it first.
    async fn claim(
        &self,
        request: &CapacityRequest,
        version: u64,
    ) -> Result<Option<CapacityRequest>> {
        let mut claim = request.clone();
        claim.attempts += 1;
        claim.next_attempt_at = self
            .shared
            .clock
            .now()
            .plus(retry_after(claim.attempts, self.shared.config.scale_retry));
        let won = self
            .shared
            .store
            .update_capacity_request(&claim, version, &[])
            .await?;
        Ok(won.then_some(claim))
    }

    /// Keeps the hook's failure on the claimed request (retried once its
    /// wait has passed).
    async fn failed(
        &self,
        mut claim: CapacityRequest,
        version: u64,
        error: String,
    ) -> Result<bool> {
        tracing::warn!(request = %claim.id, attempts = claim.attempts, %error, "scale hook failed");
        claim.last_error = Some(error);
        self.shared
            .store
            .update_capacity_request(&claim, version, &[])
            .await?;
        Ok(false)
    }

    /// Writes `done` over `version` with its event's outbox entries; if
    /// written, emits the event and audits `action`.
    async fn advance(
        &self,
        done: &CapacityRequest,
        version: u64,
        event: Option<EventKind>,
        action: &str,
    ) -> Result<bool> {
        let events: Vec<(&EventKind, Option<String>)> = event
            .iter()
            .map(|k| (k, alerts::observed_key(k, done.state.as_str())))
            .collect();
        let entries = self.shared.outbox_entries(&events).await?;
        let written = self
            .shared
            .store
            .update_capacity_request(done, version, &entries)
            .await?;
        if written {
            if let Some(kind) = event {
                self.shared.emit(kind);
            }
            self.audit_request(action, done).await?;
        }
        Ok(written)
    }

    async fn audit_request(&self, action: &str, request: &CapacityRequest) -> Result<()> {
        let detail = serde_json::json!({
            "state": request.state.as_str(),
            "slots": request.slots,
            "exams": request.exams,
            "workers": request.workers,
            "deadline": request.deadline.as_millis(),
        });
        self.shared
            .audit("system", action, &request.id, detail)
            .await
    }

    /// Drains a worker a request brought, if it still takes sessions; a
    /// worker gone or already out of service needs nothing.
    async fn drain_quietly(&self, worker: &crate::ids::WorkerId) {
        let drain = AdminAction::Drain { deadline: None };
        if let Err(e) = self.fleet.admin(worker, drain, "system").await {
            tracing::debug!(%worker, error = %e, "released worker not drained");
        }
    }
}
