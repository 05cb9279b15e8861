//! [`Outbox`] on Redis: webhook endpoints in one hash, the outbox in a few
//! shared keys (see [`Keys::outbox`](crate::keys::Keys::outbox)), each
//! step one Lua script (`lua/outbox_*.lua`; entries are appended by
//! `outbox_append` of the prelude, which `put_worker.lua`,
//! `delete_worker.lua`, `confirm.lua` and `release_lost.lua` also call).

use std::time::Duration;

use async_trait::async_trait;
use redis::ScriptInvocation;
use vdi_cluster_core::ledger::Disruption;
use vdi_cluster_core::outbox::{
    Attempt, Delivery, DeliveryState, Failing, LeasedDelivery, LostDispatch, LostRelease, Next,
    Outbox, OutboxEntry, WebhookEndpoint, failed_attempts,
};
use vdi_cluster_core::pacing::PermitReturn;
use vdi_cluster_core::store::{CasOutcome, DeleteOutcome, Lease};
use vdi_cluster_core::time::Timestamp;
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{Dispatch, DispatchId, Page, Paged, Result, SessionKey, WorkerId};

use crate::dispatch::fenced;
use crate::error::{BackendError, BackendResult};
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

impl RedisStore {
    /// The outbox's four keys `outbox_append` writes, in its order.
    pub(crate) fn outbox_keys(&self, invocation: &mut ScriptInvocation<'_>) {
        for part in ["entries", "due", "state", "dedup"] {
            invocation.key(self.keys.outbox(part));
        }
    }

    /// `entries` as `outbox_append` reads them: their endpoint lists as
    /// keys; their count, then id, endpoint, key, due and JSON as
    /// arguments.
    pub(crate) fn outbox_entries(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        entries: &[OutboxEntry],
    ) -> BackendResult<()> {
        invocation.arg(entries.len());
        for e in entries {
            let json = serde_json::to_string(e).map_err(|err| {
                BackendError::malformed(self.keys.outbox("entries"), "outbox entry", err)
            })?;
            invocation
                .key(self.keys.outbox_endpoint(&e.endpoint))
                .arg(&e.id)
                .arg(&e.endpoint)
                .arg(&e.dedup)
                .arg(e.event.at.as_millis())
                .arg(json);
        }
        Ok(())
    }

    fn parse_entry(&self, json: &str) -> BackendResult<OutboxEntry> {
        serde_json::from_str(json)
            .map_err(|e| BackendError::malformed(self.keys.outbox("entries"), "outbox entry", e))
    }

    fn parse_attempts(&self, lines: &str) -> BackendResult<Vec<Attempt>> {
        lines
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    BackendError::malformed(self.keys.outbox("attempts"), "delivery attempt", e)
                })
            })
            .collect()
    }
}

#[async_trait]
impl Outbox for RedisStore {
    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<bool> {
        let key = self.keys.webhooks();
        let json = serde_json::to_string(endpoint)
            .map_err(|e| BackendError::malformed(key.clone(), "webhook", e))?;
        let added: i64 = redis::cmd("HSETNX")
            .arg(&key)
            .arg(&endpoint.id)
            .arg(json)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(added == 1)
    }

    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        let key = self.keys.webhooks();
        let all: Vec<String> = redis::cmd("HVALS")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut out = all
            .iter()
            .map(|j| {
                serde_json::from_str::<WebhookEndpoint>(j)
                    .map_err(|e| BackendError::malformed(key.clone(), "webhook", e))
            })
            .collect::<BackendResult<Vec<_>>>()?;
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let (deleted,): (i64,) = redis::pipe()
            .atomic()
            .cmd("HDEL")
            .arg(self.keys.webhooks())
            .arg(id)
            .cmd("HDEL")
            .arg(self.keys.outbox("failures"))
            .arg(id)
            .ignore()
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(deleted == 1)
    }

    async fn append_outbox(&self, entries: &[OutboxEntry], fence: Option<&Lease>) -> Result<u32> {
        if entries.is_empty() && fence.is_none() {
            return Ok(0);
        }
        let mut invocation = SCRIPTS.outbox_enqueue.prepare_invoke();
        self.outbox_keys(&mut invocation);
        match fence {
            Some(lease) => invocation.arg(&lease.holder).arg(lease.token),
            None => invocation.arg("").arg(""),
        };
        self.outbox_entries(&mut invocation, entries)?;
        if let Some(lease) = fence {
            invocation.key(self.keys.lease(&lease.name));
        }
        let written: u32 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| fenced(e, fence))?;
        Ok(written)
    }

    async fn put_worker_with_outbox(
        &self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<CasOutcome> {
        self.write_worker(record, expected, dispatched, entries)
            .await
    }

    async fn put_worker_releasing_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> Result<LostRelease> {
        self.release_lost(record, expected, entries, lost).await
    }

    async fn delete_worker_with_outbox(
        &self,
        id: &WorkerId,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<DeleteOutcome> {
        self.remove_worker(id, expected, entries).await
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
        self.run_confirm(
            key,
            id,
            session,
            now,
            sticky_ttl,
            permit,
            entries,
            disruptions,
        )
        .await
    }

    async fn lease_deliveries(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<LeasedDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, u64, String, String)> = SCRIPTS
            .outbox_lease
            .key(self.keys.outbox("due"))
            .key(self.keys.outbox("state"))
            .key(self.keys.outbox("tokens"))
            .key(self.keys.outbox("lease-token"))
            .key(self.keys.outbox("entries"))
            .key(self.keys.outbox("attempts"))
            .arg(now.as_millis())
            .arg(until.as_millis())
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for (_, token, entry, attempts) in rows {
            out.push(LeasedDelivery {
                entry: self.parse_entry(&entry)?,
                token,
                attempts: failed_attempts(&self.parse_attempts(&attempts)?),
            });
        }
        Ok(out)
    }

    async fn finish_delivery(
        &self,
        delivery: &LeasedDelivery,
        attempt: &Attempt,
        next: Next,
        failing: Option<Failing<'_>>,
    ) -> Result<Option<u32>> {
        let attempt_json = serde_json::to_string(attempt).map_err(|e| {
            BackendError::malformed(self.keys.outbox("attempts"), "delivery attempt", e)
        })?;
        let (state, due) = match next {
            Next::Delivered => (DeliveryState::Delivered, 0),
            Next::GiveUp => (DeliveryState::Failed, 0),
            Next::RetryAt(at) => (DeliveryState::Pending, at.as_millis()),
        };
        let mut invocation = SCRIPTS.outbox_finish.prepare_invoke();
        self.outbox_keys(&mut invocation);
        for part in ["tokens", "attempts", "failures", "finished"] {
            invocation.key(self.keys.outbox(part));
        }
        invocation
            .arg(&delivery.entry.id)
            .arg(delivery.token)
            .arg(attempt_json)
            .arg(state.name())
            .arg(due)
            .arg(&delivery.entry.endpoint)
            .arg(if attempt.succeeded() { "1" } else { "0" })
            .arg(attempt.at.as_millis());
        match failing {
            Some(f) => {
                invocation.arg(f.threshold);
                self.outbox_entries(&mut invocation, f.entries)?;
            }
            None => {
                invocation.arg("").arg(0);
            }
        }
        let failures: Option<u32> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(failures)
    }

    async fn delivery_page(&self, endpoint: &str, page: Page) -> Result<Paged<Delivery>> {
        let (total, ids) = self
            .list_page(&self.keys.outbox_endpoint(endpoint), page)
            .await?;
        if ids.is_empty() {
            return Ok(Paged {
                items: Vec::new(),
                total,
            });
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for part in ["entries", "state", "attempts"] {
            pipe.cmd("HMGET").arg(self.keys.outbox(part)).arg(&ids);
        }
        pipe.cmd("ZMSCORE").arg(self.keys.outbox("due")).arg(&ids);
        type Rows = (
            Vec<Option<String>>,
            Vec<Option<String>>,
            Vec<Option<String>>,
            Vec<Option<f64>>,
        );
        let (entries, states, attempts, due): Rows = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut out = Vec::with_capacity(ids.len());
        for i in 0..ids.len() {
            let (Some(entry), Some(state)) = (&entries[i], &states[i]) else {
                continue;
            };
            let state = DeliveryState::parse(state)
                .ok_or_else(|| BackendError::unexpected("outbox state", Some(state.as_str())))?;
            let entry = self.parse_entry(entry)?;
            out.push(Delivery {
                due_at: due[i].map_or(entry.event.at, |ms| Timestamp(ms as u64)),
                entry,
                state,
                attempts: self.parse_attempts(attempts[i].as_deref().unwrap_or(""))?,
            });
        }
        Ok(Paged { items: out, total })
    }

    async fn retry_delivery(&self, endpoint: &str, id: &str, now: Timestamp) -> Result<bool> {
        let entry: Option<String> = redis::cmd("HGET")
            .arg(self.keys.outbox("entries"))
            .arg(id)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let Some(entry) = entry else {
            return Ok(false);
        };
        if self.parse_entry(&entry)?.endpoint != endpoint {
            return Ok(false);
        }
        let retried: i64 = SCRIPTS
            .outbox_retry
            .key(self.keys.outbox("state"))
            .key(self.keys.outbox("due"))
            .arg(id)
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(retried == 1)
    }

    async fn purge_deliveries(&self, before: Timestamp, limit: usize) -> Result<u32> {
        if limit == 0 {
            return Ok(0);
        }
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.outbox("finished"))
            .arg("-inf")
            .arg(format!("({}", before.as_millis()))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let entries: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.outbox("entries"))
            .arg(&ids)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut invocation = SCRIPTS.outbox_purge.prepare_invoke();
        for part in [
            "entries", "state", "dedup", "tokens", "attempts", "finished",
        ] {
            invocation.key(self.keys.outbox(part));
        }
        invocation.arg(before.as_millis());
        for (id, entry) in ids.iter().zip(entries) {
            // An entry gone already is only dropped from the index.
            let (endpoint, dedup) = match entry {
                Some(json) => {
                    let e = self.parse_entry(&json)?;
                    (e.endpoint, e.dedup)
                }
                None => (String::new(), String::new()),
            };
            invocation
                .key(self.keys.outbox_endpoint(&endpoint))
                .arg(id)
                .arg(endpoint)
                .arg(dedup);
        }
        let purged: u32 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(purged)
    }
}
