//! Repairing the records toward a worker's report of what it runs: the
//! I/O side of [`crate::fleet`] (adopt, confirm, stop), run on every
//! accepted heartbeat that lists its live sessions.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ClusterService;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::events::EventKind;
use crate::fleet::{LiveVerdict, judge_live};
use crate::ids::SessionKey;
use crate::store::Adoption;
use crate::worker::{Heartbeat, MAX_LIVE_SESSIONS, WorkerRecord};

/// What one heartbeat's report of live sessions repaired. Counted here, in
/// the heartbeat's own answer ([`HeartbeatAck`](super::HeartbeatAck)), and
/// announced one event per session (`sessionAdopted`,
/// `reservationAdopted`, `sessionStopped`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetRepair {
    /// Live sessions with no dispatch record, adopted on the worker.
    pub adopted: u32,
    /// Reservations on the worker confirmed by its report.
    pub reservations_adopted: u32,
    /// Sessions the worker must stop: their dispatch is settled on another
    /// worker.
    pub release_sessions: Vec<SessionKey>,
}

/// The heartbeat and stored record a repair works from.
struct Report<'a> {
    record: &'a WorkerRecord,
    hb: &'a Heartbeat,
}

impl Report<'_> {
    /// The active dispatch of a session adopted on this worker at `now`.
    fn adoption(&self, key: &SessionKey, now: crate::time::Timestamp) -> Dispatch {
        let details = self.hb.live_details.get(key).cloned();
        Dispatch::adopted(key.clone(), self.record, now, details)
    }
}

/// The dispatches on a reporting worker, by session.
pub(super) type Placed = HashMap<SessionKey, Dispatch>;

impl ClusterService {
    /// The dispatches on `hb`'s worker, read when its heartbeat lists live
    /// sessions (empty otherwise: nothing to compare them with).
    pub(super) async fn placed_on(&self, hb: &Heartbeat) -> Result<Placed> {
        let Some(live) = hb.live_sessions.as_deref().filter(|l| !l.is_empty()) else {
            return Ok(Placed::new());
        };
        Ok(self
            .store
            .worker_dispatches(&hb.worker, MAX_LIVE_SESSIONS.max(live.len()))
            .await?
            .into_iter()
            .map(|d| (d.key.clone(), d))
            .collect())
    }

    /// Repairs the records toward `hb`'s live sessions, reported by the
    /// worker whose record (as just written) is `record` and whose
    /// dispatches were `placed` ([`placed_on`](Self::placed_on)): adopts
    /// the sessions nobody holds, confirms its own stale reservations, and
    /// names the duplicates it must stop. Records are never removed here;
    /// a session missing from the report is reconcile's business.
    pub(super) async fn repair_from_report(
        &self,
        record: &WorkerRecord,
        hb: &Heartbeat,
        placed: &Placed,
    ) -> Result<FleetRepair> {
        let mut repair = FleetRepair::default();
        let Some(live) = hb.live_sessions.as_deref().filter(|l| !l.is_empty()) else {
            return Ok(repair);
        };
        let report = Report { record, hb };
        for key in live {
            let stored = match placed.get(key) {
                Some(d) => Some(d.clone()),
                None => self.store.dispatch(key).await?,
            };
            self.repair_one(&report, key, stored.as_ref(), &mut repair)
                .await?;
        }
        if repair.adopted + repair.reservations_adopted > 0 {
            self.invalidate_snapshot();
        }
        Ok(repair)
    }

    async fn repair_one(
        &self,
        report: &Report<'_>,
        key: &SessionKey,
        stored: Option<&Dispatch>,
        repair: &mut FleetRepair,
    ) -> Result<()> {
        let now = self.clock.now();
        let worker = &report.record.id;
        let adopting = report.record.policy.is_enabled();
        let grace = self.config.fleet_grace();
        let mut verdict = judge_live(stored, worker, adopting, now, grace);
        if verdict == LiveVerdict::Adopt {
            let adoption = report.adoption(key, now);
            match self.store.adopt(&adoption, self.config.sticky_ttl).await? {
                Adoption::Adopted(d) => {
                    tracing::info!(session = %key, worker = %d.worker, "adopted a session the worker runs without a record");
                    repair.adopted += 1;
                    self.emit(EventKind::SessionAdopted {
                        session: key.clone(),
                        worker: worker.clone(),
                    });
                    return Ok(());
                }
                // Placed concurrently: judge what is there now.
                Adoption::Existing(d) => {
                    verdict = judge_live(Some(&d), worker, adopting, now, grace);
                    if let Some(holder) = (verdict == LiveVerdict::Stop).then_some(d.worker) {
                        self.stop_duplicate(key, worker, holder, repair);
                    }
                    return Ok(());
                }
                Adoption::UnknownWorker => return Ok(()),
            }
        }
        match verdict {
            LiveVerdict::ConfirmReservation(id) => {
                let details = report.hb.live_details.get(key).cloned();
                let confirmed = self
                    .store
                    .confirm(key, id, details, now, self.config.sticky_ttl)
                    .await?;
                if confirmed.is_some() {
                    tracing::info!(session = %key, worker = %worker, "a stale reservation confirmed by the worker's report");
                    repair.reservations_adopted += 1;
                    self.emit(EventKind::ReservationAdopted {
                        session: key.clone(),
                        worker: worker.clone(),
                    });
                }
            }
            LiveVerdict::Stop => {
                if let Some(holder) = stored.map(|d| d.worker.clone()) {
                    self.stop_duplicate(key, worker, holder, repair);
                }
            }
            LiveVerdict::Keep | LiveVerdict::Wait | LiveVerdict::Adopt => {}
        }
        Ok(())
    }

    fn stop_duplicate(
        &self,
        key: &SessionKey,
        worker: &crate::ids::WorkerId,
        holder: crate::ids::WorkerId,
        repair: &mut FleetRepair,
    ) {
        tracing::info!(session = %key, worker = %worker, holder = %holder, "telling the worker to stop a duplicate session");
        repair.release_sessions.push(key.clone());
        self.emit(EventKind::SessionStopped {
            session: key.clone(),
            worker: worker.clone(),
            holder,
        });
    }
}
