//! [`StartPermits`] in memory: per worker, the held permits and the queue
//! with their leases, and the last starts, under the store's one mutex.

use std::collections::{BTreeMap, HashMap, VecDeque};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::WorkerId;
use crate::pacing::{
    HeldPermit, PermitAnswer, PermitRequest, StartPermits, StartQueue, StartSample,
};
use crate::time::Timestamp;

/// One worker's permits.
#[derive(Debug, Default)]
pub(super) struct WorkerPermits {
    /// Held: id → (granted at, until).
    held: HashMap<String, (Timestamp, Timestamp)>,
    /// Waiting: arrival number → (id, until).
    waiting: BTreeMap<u64, (String, Timestamp)>,
    /// Waiting: id → arrival number.
    arrivals: HashMap<String, u64>,
    next_arrival: u64,
    samples: VecDeque<StartSample>,
}

impl WorkerPermits {
    fn expire(&mut self, now: Timestamp) {
        self.held.retain(|_, (_, until)| *until > now);
        let gone: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(n, _)| *n)
            .collect();
        for n in gone {
            if let Some((id, _)) = self.waiting.remove(&n) {
                self.arrivals.remove(&id);
            }
        }
    }

    fn in_flight(&self) -> u32 {
        u32::try_from(self.held.len()).unwrap_or(u32::MAX)
    }

    /// Grants `id` a permit as compare-and-reserve asks (`asked`): only
    /// while fewer than the limit are held and nobody waits. The permits
    /// held then, this one included.
    pub(super) fn grant_if_free(&mut self, id: &str, asked: &PermitRequest) -> Option<u32> {
        self.expire(asked.now);
        if !self.waiting.is_empty() || self.in_flight() >= asked.limit {
            return None;
        }
        self.held.insert(id.to_owned(), (asked.now, asked.until));
        Some(self.in_flight())
    }
}

/// Gives back `id`'s permit or place on `worker` and records `sample`
/// among its last `keep` starts; whether `id` held a permit.
pub(super) fn give_back(
    permits: &mut PermitState,
    worker: &WorkerId,
    id: &str,
    sample: Option<StartSample>,
    keep: u32,
) -> bool {
    let w = permits.entry(worker.clone()).or_default();
    let held = w.held.remove(id).is_some();
    if let Some(n) = w.arrivals.remove(id) {
        w.waiting.remove(&n);
    }
    if let Some(sample) = sample {
        w.samples.push_back(sample);
        while w.samples.len() > keep as usize {
            w.samples.pop_front();
        }
    }
    held
}

/// The permits' part of the state.
pub(super) type PermitState = HashMap<WorkerId, WorkerPermits>;

#[async_trait]
impl StartPermits for MemoryStore {
    async fn acquire_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<PermitAnswer> {
        let mut s = self.lock()?;
        let w = s.permits.entry(worker.clone()).or_default();
        w.expire(now);
        if let Some(held) = w.held.get_mut(id) {
            held.1 = until;
            return Ok(PermitAnswer::Granted {
                in_flight: w.in_flight(),
            });
        }
        let arrival = match w.arrivals.get(id) {
            Some(n) => *n,
            None => {
                w.next_arrival += 1;
                let n = w.next_arrival;
                w.arrivals.insert(id.to_owned(), n);
                n
            }
        };
        w.waiting.insert(arrival, (id.to_owned(), until));
        let position = u32::try_from(w.waiting.range(..arrival).count()).unwrap_or(u32::MAX);
        let in_flight = w.in_flight();
        if u64::from(in_flight) + u64::from(position) < u64::from(limit) {
            w.waiting.remove(&arrival);
            w.arrivals.remove(id);
            w.held.insert(id.to_owned(), (now, until));
            return Ok(PermitAnswer::Granted {
                in_flight: in_flight + 1,
            });
        }
        Ok(PermitAnswer::Waiting {
            position,
            in_flight,
        })
    }

    async fn release_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        sample: Option<StartSample>,
        keep: u32,
    ) -> Result<bool> {
        let mut s = self.lock()?;
        Ok(give_back(&mut s.permits, worker, id, sample, keep))
    }

    async fn start_queue(&self, worker: &WorkerId, now: Timestamp) -> Result<StartQueue> {
        let s = self.lock()?;
        let Some(w) = s.permits.get(worker) else {
            return Ok(StartQueue::default());
        };
        let mut held: Vec<HeldPermit> = w
            .held
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(id, (since, _))| HeldPermit {
                id: id.clone(),
                since: *since,
            })
            .collect();
        held.sort_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)));
        Ok(StartQueue {
            held,
            waiting: w
                .waiting
                .values()
                .filter(|(_, until)| *until > now)
                .map(|(id, _)| id.clone())
                .collect(),
            samples: w.samples.iter().copied().collect(),
        })
    }
}
