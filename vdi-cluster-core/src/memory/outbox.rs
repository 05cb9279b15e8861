//! [`Outbox`] on the in-memory backend, under the store's one mutex.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;

use super::MemoryStore;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::ledger::Disruption;
use crate::outbox::{
    Attempt, Delivery, DeliveryState, Failing, LeasedDelivery, LostDispatch, LostRelease, Next,
    Outbox, OutboxEntry, WebhookEndpoint, failed_attempts,
};
use crate::pacing::PermitReturn;
use crate::page::{Page, Paged};
use crate::store::{CasOutcome, DeleteOutcome, Lease};
use crate::time::Timestamp;
use crate::worker::WorkerRecord;

/// The outbox's part of the state.
#[derive(Debug, Default)]
pub(super) struct OutboxState {
    endpoints: BTreeMap<String, WebhookEndpoint>,
    failures: HashMap<String, u32>,
    /// Deliveries in the order they were written.
    deliveries: Vec<Stored>,
    index: HashMap<String, usize>,
    dedup: HashSet<(String, String)>,
    tokens: u64,
}

#[derive(Debug)]
struct Stored {
    delivery: Delivery,
    token: u64,
}

impl OutboxState {
    /// Writes the entries whose (endpoint, key) is new; answers how many.
    pub(super) fn enqueue(&mut self, entries: &[OutboxEntry]) -> u32 {
        let mut new = 0;
        for e in entries {
            if !self.dedup.insert((e.endpoint.clone(), e.dedup.clone())) {
                continue;
            }
            self.index.insert(e.id.clone(), self.deliveries.len());
            self.deliveries.push(Stored {
                delivery: Delivery {
                    entry: e.clone(),
                    state: DeliveryState::Pending,
                    due_at: e.event.at,
                    attempts: Vec::new(),
                },
                token: 0,
            });
            new += 1;
        }
        new
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<bool> {
        let mut s = self.lock()?;
        if s.outbox.endpoints.contains_key(&endpoint.id) {
            return Ok(false);
        }
        s.outbox
            .endpoints
            .insert(endpoint.id.clone(), endpoint.clone());
        Ok(true)
    }

    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        let s = self.lock()?;
        let mut all: Vec<_> = s.outbox.endpoints.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut s = self.lock()?;
        s.outbox.failures.remove(id);
        Ok(s.outbox.endpoints.remove(id).is_some())
    }

    async fn append_outbox(&self, entries: &[OutboxEntry], fence: Option<&Lease>) -> Result<u32> {
        let now = self.clock.now();
        let mut s = self.lock()?;
        s.check_fence(fence, now)?;
        Ok(s.outbox.enqueue(entries))
    }

    async fn put_worker_with_outbox(
        &self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<CasOutcome> {
        let mut s = self.lock()?;
        let outcome = s.put_worker(record, expected, dispatched);
        if let CasOutcome::Written { .. } = outcome {
            s.outbox.enqueue(entries);
        }
        Ok(outcome)
    }

    async fn put_worker_releasing_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> Result<LostRelease> {
        Ok(self
            .lock()?
            .put_worker_releasing_lost(record, expected, entries, lost))
    }

    async fn delete_worker_with_outbox(
        &self,
        id: &WorkerId,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<DeleteOutcome> {
        let mut s = self.lock()?;
        let outcome = s.delete_worker(id, expected);
        if outcome == DeleteOutcome::Deleted {
            s.outbox.enqueue(entries);
        }
        Ok(outcome)
    }

    async fn confirm_with_outbox(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) -> Result<Option<Dispatch>> {
        let mut s = self.lock()?;
        let confirmed = s.confirm(key, id, session, now, sticky_ttl, permit);
        if confirmed.is_some() {
            s.outbox.enqueue(entries);
            s.ledger.append(disruptions);
        }
        Ok(confirmed)
    }

    async fn lease_deliveries(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<LeasedDelivery>> {
        let mut s = self.lock()?;
        let o = &mut s.outbox;
        let mut due: Vec<usize> = o
            .deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                matches!(
                    d.delivery.state,
                    DeliveryState::Pending | DeliveryState::Leased
                ) && d.delivery.due_at <= now
            })
            .map(|(i, _)| i)
            .collect();
        due.sort_by_key(|&i| o.deliveries[i].delivery.due_at);
        due.truncate(limit);
        let mut leased = Vec::with_capacity(due.len());
        for i in due {
            o.tokens += 1;
            let d = &mut o.deliveries[i];
            d.token = o.tokens;
            d.delivery.state = DeliveryState::Leased;
            d.delivery.due_at = until;
            leased.push(LeasedDelivery {
                entry: d.delivery.entry.clone(),
                token: d.token,
                attempts: failed_attempts(&d.delivery.attempts),
            });
        }
        Ok(leased)
    }

    async fn finish_delivery(
        &self,
        delivery: &LeasedDelivery,
        attempt: &Attempt,
        next: Next,
        failing: Option<Failing<'_>>,
    ) -> Result<Option<u32>> {
        let mut s = self.lock()?;
        let o = &mut s.outbox;
        let Some(&i) = o.index.get(&delivery.entry.id) else {
            return Ok(None);
        };
        let d = &mut o.deliveries[i];
        if d.token != delivery.token || d.delivery.state != DeliveryState::Leased {
            return Ok(None);
        }
        d.delivery.attempts.push(attempt.clone());
        match next {
            Next::Delivered => d.delivery.state = DeliveryState::Delivered,
            Next::GiveUp => d.delivery.state = DeliveryState::Failed,
            Next::RetryAt(at) => {
                d.delivery.state = DeliveryState::Pending;
                d.delivery.due_at = at;
            }
        }
        let endpoint = delivery.entry.endpoint.clone();
        let count = o.failures.entry(endpoint).or_default();
        *count = if attempt.succeeded() { 0 } else { *count + 1 };
        let count = *count;
        if let Some(f) = failing.filter(|f| f.reached(count)) {
            o.enqueue(f.entries);
        }
        Ok(Some(count))
    }

    async fn delivery_page(&self, endpoint: &str, page: Page) -> Result<Paged<Delivery>> {
        let s = self.lock()?;
        let of_endpoint = s
            .outbox
            .deliveries
            .iter()
            .rev()
            .filter(|d| d.delivery.entry.endpoint == endpoint);
        Ok(page.take(of_endpoint).map(|d| d.delivery.clone()))
    }

    async fn retry_delivery(&self, endpoint: &str, id: &str, now: Timestamp) -> Result<bool> {
        let mut s = self.lock()?;
        let o = &mut s.outbox;
        let Some(&i) = o.index.get(id) else {
            return Ok(false);
        };
        let d = &mut o.deliveries[i].delivery;
        if d.entry.endpoint != endpoint || d.state != DeliveryState::Failed {
            return Ok(false);
        }
        d.state = DeliveryState::Pending;
        d.due_at = now;
        Ok(true)
    }

    async fn purge_deliveries(&self, before: Timestamp, limit: usize) -> Result<u32> {
        let mut s = self.lock()?;
        let o = &mut s.outbox;
        let mut purged = 0;
        let mut gone = HashSet::new();
        o.deliveries.retain(|d| {
            let finished = matches!(
                d.delivery.state,
                DeliveryState::Delivered | DeliveryState::Failed
            ) && d.delivery.attempts.last().is_some_and(|a| a.at < before);
            let purge = finished && purged < limit;
            if purge {
                purged += 1;
                let e = &d.delivery.entry;
                gone.insert((e.endpoint.clone(), e.dedup.clone()));
            }
            !purge
        });
        o.dedup.retain(|k| !gone.contains(k));
        o.index = o
            .deliveries
            .iter()
            .enumerate()
            .map(|(i, d)| (d.delivery.entry.id.clone(), i))
            .collect();
        Ok(u32::try_from(purged).unwrap_or(u32::MAX))
    }
}
