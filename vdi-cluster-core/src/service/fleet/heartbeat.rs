//! Heartbeats, registration and deregistration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::freeze::{Forced, FreezeOverride};
use super::lost::{Proven, Released};
use super::{CAS_ATTEMPTS, Fleet};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::health::HeartbeatOrder;
use crate::ids::{SessionKey, WorkerId};
use crate::policy::{DrainStatus, PolicyEvent, transition};
use crate::store::{CasOutcome, DeleteOutcome, Lane};
use crate::time::Timestamp;
use crate::worker::{
    Heartbeat, HeartbeatUpdate, HostInfo, Registrant, WorkerDescription, WorkerRecord,
    WorkerSnapshot, WorkerStatus, WorkerView, apply_heartbeat, check_relocation, check_takeover,
    unrecorded,
};

/// A worker the control plane has never seen must say where to reach it.
fn require_url(description: &WorkerDescription) -> Result<()> {
    if description.api_base_url.is_empty() {
        return Err(crate::ValidationError::new(
            "apiBaseUrl",
            "required for a new worker: an absolute http:// or https:// URL with a host",
        )
        .into());
    }
    Ok(())
}

impl From<CasOutcome> for Released {
    fn from(outcome: CasOutcome) -> Self {
        match outcome {
            CasOutcome::Written { version } => Self::Written {
                version,
                lost: 0,
                gone: 0,
            },
            CasOutcome::Conflict { .. } => Self::Conflict,
        }
    }
}

/// The answer to a heartbeat: the worker's slots as the control plane sees
/// them, its admin state, and when to heartbeat next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAck {
    /// The worker.
    pub code: WorkerId,
    /// `false` when the heartbeat was older than one already applied.
    pub accepted: bool,
    /// One status by precedence.
    pub status: WorkerStatus,
    /// Slots by the capacity formula.
    pub max_sessions: u32,
    /// Slots free.
    pub available_sessions: u32,
    /// `max(activeSessions, dispatched)`.
    pub used_sessions: u32,
    /// Sessions dispatched by the control plane.
    pub dispatched_sessions: u32,
    /// Admin: keep sessions, take no new ones.
    pub is_draining: bool,
    /// Admin: in service at all.
    pub is_enabled: bool,
    /// `none | draining | drained`.
    pub drain_status: DrainStatus,
    /// Seconds until the next heartbeat (with jitter).
    pub next_heartbeat_sec: f64,
    /// A warning for operators (reservation above the node's size).
    pub warning: Option<String>,
    /// Sessions the worker reported live whose dispatch is settled on
    /// another worker for at least the fleet grace (superseded while this
    /// one was unreachable, or placed elsewhere after a worker call timed
    /// out): the worker should stop them. Empty unless the heartbeat
    /// carried `liveSessions`.
    pub release_sessions: Vec<SessionKey>,
    /// Sessions the worker reported live with no dispatch record, adopted
    /// by this heartbeat.
    pub adopted_sessions: u32,
    /// Reservations on the worker older than the fleet grace, confirmed by
    /// this heartbeat's report.
    pub adopted_reservations: u32,
}

impl Fleet {
    /// Whether `record`'s process is live at `now`: it heartbeated within
    /// the TTL (a second process may not take such a record over).
    pub(super) fn is_live(&self, record: &WorkerRecord, now: Timestamp) -> bool {
        record
            .last_heartbeat_at
            .is_some_and(|at| now.since(at) < self.shared.config.heartbeat_ttl)
    }

    /// Applies a worker's heartbeat (the exam platform's `POST
    /// /api/vdi/workers/heartbeat`). Unknown workers are registered. An
    /// older or replayed heartbeat changes nothing and is answered with
    /// `accepted: false`. The caller is trusted as an operator: a server
    /// passes who asks with [`heartbeat_as`](Self::heartbeat_as).
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<HeartbeatAck> {
        self.heartbeat_as(hb, Registrant::Operator).await
    }

    /// [`heartbeat`](Self::heartbeat) on behalf of `who`: a registrant
    /// that may not move a worker to another host
    /// ([`check_relocation`]) is refused with [`Error::Relocation`] when
    /// the heartbeat names a new host for a known worker, and one that
    /// does not prove which worker it is with [`Error::Takeover`] when
    /// another live process holds the record ([`check_takeover`]).
    ///
    /// Its store calls run on the [liveness lane](Lane::Liveness).
    pub async fn heartbeat_as(&self, hb: Heartbeat, who: Registrant) -> Result<HeartbeatAck> {
        Lane::Liveness.scope(self.record_heartbeat(hb, who)).await
    }

    /// [`heartbeat_as`](Self::heartbeat_as)'s work.
    async fn record_heartbeat(&self, hb: Heartbeat, who: Registrant) -> Result<HeartbeatAck> {
        hb.validate()?;
        for _ in 0..CAS_ATTEMPTS {
            let now = self.shared.clock.now();
            let stored = self.shared.store.worker(&hb.worker).await?;
            match &stored {
                Some(s) => {
                    check_relocation(&hb.worker, &s.record.description, &hb.description, who)?;
                    if let Some(boot) = hb.stamp.boot_id.as_deref() {
                        let live = self.is_live(&s.record, now);
                        let (desc, host) = (&hb.description, &hb.host);
                        check_takeover(&s.record, live, Some(boot), desc, host, who)?;
                    }
                }
                None => require_url(&hb.description)?,
            }
            let update = apply_heartbeat(
                stored.as_ref().map(|s| &s.record),
                &hb,
                now,
                &self.shared.config.thresholds,
            );
            let HeartbeatUpdate::Apply { mut record, order } = update else {
                let snapshot = stored.ok_or_else(|| Error::WorkerNotFound(hb.worker.clone()))?;
                let view = WorkerView::new(snapshot, now, &self.shared.health_config());
                return Ok(self.ack(&view, false, hb.stamp.seq));
            };
            let dispatched = stored.as_ref().map_or(0, |s| s.dispatched);
            // Read after the record: a removal holding a slot in between
            // moves the version, and this write then retries.
            let placed = self.placed_on(&hb, dispatched, order).await?;
            let occupancy = crate::policy::Occupancy {
                reported_active: record.reported_active,
                dispatched,
            };
            let t = transition(record.policy, PolicyEvent::Observed, occupancy, now)?;
            record.policy = t.to;
            let expected = stored.as_ref().map(|s| s.version);
            // Draining -> drained was decided on an empty worker: the write
            // checks that nothing was placed on it since (an adoption).
            let check = (expected.is_some() && t.requires_empty()).then_some(dispatched);
            // What the report proves no longer runs (lost to a restart, or
            // adopted from an earlier report and omitted now) is released
            // by the same write (never by one that needs the worker empty:
            // it has none).
            let proven = match (expected, check) {
                (Some(_), None) => Proven::by(placed.values(), &record),
                _ => Proven::default(),
            };
            let remaining =
                dispatched.saturating_sub(u32::try_from(proven.len()).unwrap_or(u32::MAX));
            record.unrecorded = unrecorded(&hb, |k| placed.contains_key(k), remaining);
            // The registration and the policy change ride with the record.
            let registered = stored.is_none().then(|| EventKind::WorkerRegistered {
                worker: record.id.clone(),
            });
            let policy = t.changed().then(|| EventKind::WorkerPolicy {
                worker: record.id.clone(),
                from: t.from,
                to: t.to,
                actor: "system".into(),
            });
            let events: Vec<&EventKind> = registered.iter().chain(&policy).collect();
            let written = match expected.filter(|_| !proven.is_empty()) {
                Some(version) => {
                    self.write_releasing(&record, version, &events, &proven)
                        .await?
                }
                None => self
                    .shared
                    .put_worker_alerting(&record, expected, check, &events)
                    .await?
                    .into(),
            };
            match written {
                Released::Conflict => continue,
                Released::Written {
                    version,
                    lost,
                    gone,
                } => {
                    self.tally.add_released(lost, gone);
                    let released = lost.saturating_add(gone);
                    if let Some(kind) = registered {
                        self.shared.emit(kind);
                    }
                    if order == HeartbeatOrder::Restarted {
                        self.shared.emit(EventKind::WorkerRestarted {
                            worker: record.id.clone(),
                        });
                    }
                    if let Some(kind) = policy {
                        self.shared.emit(kind);
                    }
                    if stored.is_none() || order == HeartbeatOrder::Restarted || t.changed() {
                        self.placement.invalidate_snapshot();
                    }
                    let snapshot = WorkerSnapshot {
                        record: *record,
                        version,
                        dispatched: dispatched.saturating_sub(released),
                    };
                    let repair = self
                        .repair_from_report(&snapshot.record, &hb, &placed)
                        .await?;
                    // Adoptions changed the worker's count: answer with it.
                    let snapshot = if repair.adopted + repair.reservations_adopted > 0 {
                        let fresh = self
                            .shared
                            .store
                            .worker(&hb.worker)
                            .await?
                            .unwrap_or(snapshot);
                        self.settle_adoptions(fresh, repair.adopted).await?
                    } else {
                        snapshot
                    };
                    let view = WorkerView::new(snapshot, now, &self.shared.health_config());
                    let mut ack = self.ack(&view, true, hb.stamp.seq);
                    ack.adopted_sessions = repair.adopted;
                    ack.adopted_reservations = repair.reservations_adopted;
                    ack.release_sessions = repair.release_sessions;
                    return Ok(ack);
                }
            }
        }
        Err(Error::Conflict {
            what: format!("worker {}", hb.worker),
        })
    }

    /// The sessions `adopted` from a report were counted as unrecorded
    /// when the record was written and are dispatched now: take them out
    /// of the unrecorded count, unless the record changed since (then the
    /// count stays high, which is safe, until the next report).
    async fn settle_adoptions(
        &self,
        mut snapshot: WorkerSnapshot,
        adopted: u32,
    ) -> Result<WorkerSnapshot> {
        if adopted == 0 || snapshot.record.unrecorded == 0 {
            return Ok(snapshot);
        }
        let mut record = snapshot.record.clone();
        record.unrecorded = record.unrecorded.saturating_sub(adopted);
        if let CasOutcome::Written { version } = self
            .shared
            .store
            .put_worker(&record, Some(snapshot.version))
            .await?
        {
            snapshot.record = record;
            snapshot.version = version;
        }
        Ok(snapshot)
    }

    fn ack(&self, view: &WorkerView, accepted: bool, seq: Option<u64>) -> HeartbeatAck {
        HeartbeatAck {
            code: view.id().clone(),
            accepted,
            status: view.status,
            max_sessions: view.max_sessions,
            available_sessions: view.available_sessions,
            used_sessions: view.used_sessions,
            dispatched_sessions: view.dispatched,
            is_draining: view.record.policy.is_draining(),
            is_enabled: view.record.policy.is_enabled(),
            drain_status: view.drain_status(),
            next_heartbeat_sec: self.next_interval(view.id(), seq).as_secs_f64(),
            warning: view.record.capacity.and_then(|c| c.warning()),
            release_sessions: Vec::new(),
            adopted_sessions: 0,
            adopted_reservations: 0,
        }
    }

    /// The configured interval, moved by up to the jitter percentage either
    /// way, deterministically per worker and heartbeat.
    fn next_interval(&self, worker: &WorkerId, seq: Option<u64>) -> Duration {
        let base = self.shared.config.heartbeat_interval;
        let jitter = u64::from(self.shared.config.heartbeat_jitter_percent.min(100));
        if jitter == 0 {
            return base;
        }
        let roll = self.shared.request_seed((worker, seq)) % (2 * jitter + 1);
        let percent = 100 - jitter + roll;
        Duration::from_millis(crate::time::duration_millis(base) * percent / 100)
    }

    /// Registers a worker ahead of its first heartbeat (as minicloud does), or
    /// updates the description of a known one. Idempotent. The caller is
    /// trusted as an operator: a server passes who asks with
    /// [`register_as`](Self::register_as).
    pub async fn register(
        &self,
        id: WorkerId,
        description: WorkerDescription,
    ) -> Result<WorkerView> {
        self.register_as(id, description, Registrant::Operator)
            .await
    }

    /// [`register`](Self::register) on behalf of `who`: moving a known
    /// worker to another host needs [`Registrant::may_move_host`]
    /// ([`Error::Relocation`] otherwise), and describing a live worker's
    /// record from another URL needs the worker's own credential
    /// ([`Error::Takeover`] otherwise).
    ///
    /// Its store calls run on the [liveness lane](Lane::Liveness).
    pub async fn register_as(
        &self,
        id: WorkerId,
        description: WorkerDescription,
        who: Registrant,
    ) -> Result<WorkerView> {
        Lane::Liveness
            .scope(self.record_registration(id, description, who))
            .await
    }

    /// [`register_as`](Self::register_as)'s work.
    async fn record_registration(
        &self,
        id: WorkerId,
        description: WorkerDescription,
        who: Registrant,
    ) -> Result<WorkerView> {
        description.validate()?;
        for _ in 0..CAS_ATTEMPTS {
            let now = self.shared.clock.now();
            let stored = self.shared.store.worker(&id).await?;
            match &stored {
                Some(s) => {
                    check_relocation(&id, &s.record.description, &description, who)?;
                    let live = self.is_live(&s.record, now);
                    let host = HostInfo::default();
                    check_takeover(&s.record, live, None, &description, &host, who)?;
                }
                None => require_url(&description)?,
            }
            let (record, expected) = match &stored {
                Some(s) => {
                    let mut r = s.record.clone();
                    let url = std::mem::take(&mut r.description.api_base_url);
                    r.description = description.clone();
                    if r.description.api_base_url.is_empty() {
                        // Empty keeps the stored URL, as on heartbeats.
                        r.description.api_base_url = url;
                    }
                    r.deregistered_at = None;
                    r.deregister_reason = None;
                    (r, Some(s.version))
                }
                None => (
                    WorkerRecord::registered(id.clone(), description.clone(), now),
                    None,
                ),
            };
            let registered = stored
                .is_none()
                .then(|| EventKind::WorkerRegistered { worker: id.clone() });
            let events: Vec<&EventKind> = registered.iter().collect();
            if let CasOutcome::Written { .. } = self
                .shared
                .put_worker_alerting(&record, expected, None, &events)
                .await?
            {
                if let Some(kind) = registered {
                    self.shared.emit(kind);
                }
                self.placement.invalidate_snapshot();
                return self.shared.worker_view(&id).await;
            }
        }
        Err(Error::Conflict {
            what: format!("worker {id}"),
        })
    }

    /// Marks a worker deregistered (it shut down cleanly): it is offline at
    /// once, takes no sessions, and its sessions go to the failure policy at
    /// the next reconcile. A later heartbeat brings it back.
    pub async fn deregister(&self, id: &WorkerId, actor: &str) -> Result<WorkerView> {
        self.deregister_with_reason(id, actor, None).await
    }

    /// Deletes a worker's record. Refused while dispatches remain on it
    /// (drain it, or force-disable it and let reconcile move them first).
    pub async fn remove_worker(&self, id: &WorkerId, actor: &str) -> Result<()> {
        self.remove_worker_forcing(id, actor, FreezeOverride::Respect)
            .await
    }

    /// [`remove_worker`](Self::remove_worker), checked first against the
    /// change freeze (the `freeze` module): refused with
    /// [`Error::Frozen`] when it makes an exam under way fit worse, unless
    /// `force` forces it (`worker.freeze_overridden` is written with the
    /// removal).
    pub async fn remove_worker_forcing(
        &self,
        id: &WorkerId,
        actor: &str,
        force: FreezeOverride<'_>,
    ) -> Result<()> {
        let mut checked: Option<Option<Forced>> = None;
        for _ in 0..CAS_ATTEMPTS {
            let stored = self
                .shared
                .store
                .worker(id)
                .await?
                .ok_or_else(|| Error::WorkerNotFound(id.clone()))?;
            if checked.is_none() {
                checked = Some(self.check_freeze(id, "remove", actor, force).await?);
            }
            let removed = EventKind::WorkerRemoved { worker: id.clone() };
            let mut events = vec![(&removed, None)];
            if let Some(Some(forced)) = &checked {
                events.push((&forced.event, None));
            }
            let entries = self.shared.outbox_entries(&events).await?;
            match self
                .shared
                .store
                .delete_worker_with_outbox(id, stored.version, &entries)
                .await?
            {
                DeleteOutcome::Deleted => {
                    self.placement.invalidate_snapshot();
                    self.shared.emit(removed);
                    self.shared
                        .audit(actor, "remove", id.as_str(), serde_json::Value::Null)
                        .await?;
                    if let Some(forced) = checked.flatten() {
                        self.forced_written(id, actor, forced).await?;
                    }
                    return Ok(());
                }
                DeleteOutcome::HasDispatches(count) => {
                    return Err(crate::policy::TransitionError::SessionsRemain { count }.into());
                }
                DeleteOutcome::Conflict => continue,
            }
        }
        Err(Error::Conflict {
            what: format!("worker {id}"),
        })
    }
}
