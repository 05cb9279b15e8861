//! Repairing the records toward a worker's report of what it runs: the
//! I/O side of [`crate::fleet`] (adopt, confirm, stop), run on every
//! accepted heartbeat that lists its live sessions.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::Fleet;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::events::EventKind;
use crate::fleet::{LiveVerdict, judge_live};
use crate::health::HeartbeatOrder;
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

/// A worker's report of what it runs, as a repair works from it.
pub(crate) struct Report<'a> {
    /// The worker's stored record.
    pub(crate) record: &'a WorkerRecord,
    /// The sessions it reports live.
    pub(crate) live: &'a [SessionKey],
    /// Connection details it sent with some of them.
    pub(crate) details: &'a BTreeMap<SessionKey, serde_json::Value>,
    /// Dispatches read for the repair, by session.
    pub(crate) placed: &'a Placed,
    /// Where the report comes from.
    pub(crate) source: Source,
}

/// Where a report of live sessions comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A heartbeat being processed: `placed` holds the worker's own
    /// dispatches (other sessions' records are read), and the report is
    /// fresh, so a session without a record is adopted.
    Heartbeat,
    /// Reconcile's sweep of the reports workers last sent: `placed` holds
    /// every dispatch (a complete scan). A stored report may predate a
    /// release, so it adopts nothing; it confirms and stops.
    Stored,
}

impl Report<'_> {
    /// The active dispatch of a session adopted on this worker at `now`.
    fn adoption(&self, key: &SessionKey, now: crate::time::Timestamp) -> Dispatch {
        let details = self.details.get(key).cloned();
        Dispatch::adopted(key.clone(), self.record, now, details)
    }
}

/// What the heartbeats this replica processed repaired since its previous
/// reconcile pass, which adds it to its report.
#[derive(Debug, Default)]
pub(crate) struct FleetTally {
    adopted: AtomicU32,
    reservations_adopted: AtomicU32,
    stopped: AtomicU32,
    lost: AtomicU32,
    gone: AtomicU32,
}

impl FleetTally {
    pub(crate) fn add(&self, repair: &FleetRepair) {
        let stopped = u32::try_from(repair.release_sessions.len()).unwrap_or(u32::MAX);
        self.adopted.fetch_add(repair.adopted, Ordering::Relaxed);
        self.reservations_adopted
            .fetch_add(repair.reservations_adopted, Ordering::Relaxed);
        self.stopped.fetch_add(stopped, Ordering::Relaxed);
    }

    /// Counts sessions a heartbeat released: `lost` to its worker's
    /// restart, and `gone` since their adoption from an earlier report.
    pub(crate) fn add_released(&self, lost: u32, gone: u32) {
        self.lost.fetch_add(lost, Ordering::Relaxed);
        self.gone.fetch_add(gone, Ordering::Relaxed);
    }

    /// The released sessions counted so far, reset: `(lost, gone)`.
    pub(crate) fn take_released(&self) -> (u32, u32) {
        (
            self.lost.swap(0, Ordering::Relaxed),
            self.gone.swap(0, Ordering::Relaxed),
        )
    }

    /// The tally so far, reset: `(adopted, reservations adopted, stopped)`.
    pub(crate) fn take(&self) -> (u32, u32, u32) {
        (
            self.adopted.swap(0, Ordering::Relaxed),
            self.reservations_adopted.swap(0, Ordering::Relaxed),
            self.stopped.swap(0, Ordering::Relaxed),
        )
    }
}

/// Dispatches by session.
pub(crate) type Placed = HashMap<SessionKey, Dispatch>;

impl Fleet {
    /// The dispatches on `hb`'s worker, read when there is something to
    /// hold them against: live sessions its heartbeat lists, or, while the
    /// records count `dispatched` sessions on it, a report that may omit
    /// them (a list, even an empty one, or a restart). Empty otherwise.
    pub(crate) async fn placed_on(
        &self,
        hb: &Heartbeat,
        dispatched: u32,
        order: HeartbeatOrder,
    ) -> Result<Placed> {
        let listed = hb.live_sessions.as_ref().map_or(0, Vec::len);
        let may_omit =
            dispatched > 0 && (hb.live_sessions.is_some() || order == HeartbeatOrder::Restarted);
        if listed == 0 && !may_omit {
            return Ok(Placed::new());
        }
        Ok(self
            .shared
            .store
            .worker_dispatches(&hb.worker, MAX_LIVE_SESSIONS.max(listed))
            .await?
            .into_iter()
            .map(|d| (d.key.clone(), d))
            .collect())
    }

    /// Repairs the records toward `hb`'s live sessions, reported by the
    /// worker whose record (as just written) is `record` and whose
    /// dispatches were `placed` ([`placed_on`](Self::placed_on)).
    pub(crate) async fn repair_from_report(
        &self,
        record: &WorkerRecord,
        hb: &Heartbeat,
        placed: &Placed,
    ) -> Result<FleetRepair> {
        let Some(live) = hb.live_sessions.as_deref() else {
            return Ok(FleetRepair::default());
        };
        let repair = self
            .repair(&Report {
                record,
                live,
                details: &hb.live_details,
                placed,
                source: Source::Heartbeat,
            })
            .await?;
        self.tally.add(&repair);
        Ok(repair)
    }

    /// Repairs the records toward `report`: adopts the sessions nobody
    /// holds, confirms the worker's own stale reservations, and names the
    /// duplicates it must stop. Records are never removed here: a session
    /// missing from the report is released with the heartbeat's write when
    /// the report proves it gone (`lost`), and otherwise is reconcile's
    /// business.
    pub(crate) async fn repair(&self, report: &Report<'_>) -> Result<FleetRepair> {
        let mut repair = FleetRepair::default();
        for key in report.live {
            let stored = match report.placed.get(key) {
                Some(d) => Some(d.clone()),
                None if report.source == Source::Stored => None,
                None => self.shared.store.dispatch(key).await?,
            };
            self.repair_one(report, key, stored.as_ref(), &mut repair)
                .await?;
        }
        if repair.adopted + repair.reservations_adopted > 0 {
            self.placement.invalidate_snapshot();
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
        let now = self.shared.clock.now();
        let worker = &report.record.id;
        let adopting = report.source == Source::Heartbeat && report.record.policy.is_enabled();
        let grace = self.shared.config.fleet_grace();
        let mut verdict = judge_live(stored, worker, adopting, now, grace);
        if verdict == LiveVerdict::Adopt {
            let adoption = report.adoption(key, now);
            match self
                .shared
                .store
                .adopt(&adoption, self.shared.config.sticky_ttl)
                .await?
            {
                Adoption::Adopted(d) => {
                    tracing::info!(session = %key, worker = %d.worker, "adopted a session the worker runs without a record");
                    repair.adopted += 1;
                    self.shared.emit(EventKind::SessionAdopted {
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
                let details = report.details.get(key).cloned();
                // The worker runs it: its start is over, and so is the
                // permit it may hold.
                let permit = self.shared.config.pacing.permit_return(worker, None);
                let confirmed = self
                    .shared
                    .store
                    .confirm(
                        key,
                        id,
                        details,
                        now,
                        self.shared.config.sticky_ttl,
                        permit.as_ref(),
                    )
                    .await?;
                if confirmed.is_some() {
                    tracing::info!(session = %key, worker = %worker, "a stale reservation confirmed by the worker's report");
                    repair.reservations_adopted += 1;
                    self.shared.emit(EventKind::ReservationAdopted {
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
        self.shared.emit(EventKind::SessionStopped {
            session: key.clone(),
            worker: worker.clone(),
            holder,
        });
    }
}
