//! [`DispatchStore`] on Redis: dispatch records, counters, sticky workers
//! and affinity, every multi-key step one Lua script.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::ledger::Disruption;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::pacing::PermitReturn;
use vdi_cluster_core::store::{
    Adoption, DispatchPage, DispatchStore, ExamPlacement, Lease, RecountReport, Reservation,
    ReserveRequest,
};
use vdi_cluster_core::time::duration_millis;
use vdi_cluster_core::{
    Dispatch, DispatchId, DispatchState, Error, ExamId, Result, SessionKey, Timestamp, WorkerId,
};

use crate::codec::{dispatch_fields, dispatch_from_fields, pairs};
use crate::error::{BackendError, BackendResult};
use crate::keys::{EncodedExam, index_range, split_index_member};
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// Longest TTL handed to Redis, in milliseconds (about 35 000 years):
/// longer ones would overflow the server's expiry arithmetic.
pub(crate) const MAX_TTL_MILLIS: u64 = 1 << 50;

/// A duration as a Redis `PX` argument.
pub(crate) fn ttl_millis(d: Duration) -> u64 {
    duration_millis(d).min(MAX_TTL_MILLIS)
}

impl RedisStore {
    /// The five keys a removal touches, in the order undo.lua and
    /// release.lua expect.
    fn removal_keys(&self, key: &SessionKey) -> [String; 5] {
        let exam = EncodedExam::of(&key.exam_id);
        [
            self.keys.dispatch(key),
            self.keys.dispatched(),
            self.keys.worker_index(),
            self.keys.exam_sessions(&exam),
            self.keys.affinity(&exam),
        ]
    }

    /// Reads the records at `keys` in one round trip, skipping those gone.
    pub(crate) async fn read_dispatches(&self, keys: &[String]) -> BackendResult<Vec<Dispatch>> {
        Ok(self
            .read_dispatch_slots(keys)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Reads the records at `keys` in one round trip: one answer per key,
    /// `None` for a record gone.
    async fn read_dispatch_slots(&self, keys: &[String]) -> BackendResult<Vec<Option<Dispatch>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HGETALL").arg(key);
        }
        let replies: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn()).await?;
        keys.iter()
            .zip(replies)
            .map(|(key, fields)| dispatch_from_fields(key, fields))
            .collect()
    }

    async fn run_reserve(&self, request: &ReserveRequest) -> BackendResult<Reservation> {
        let mut dispatch = request.dispatch.clone();
        dispatch.state = DispatchState::Reserved;
        let key = self.keys.dispatch(&dispatch.key);
        let exam = EncodedExam::of(&dispatch.key.exam_id);
        let mut invocation = SCRIPTS.reserve.prepare_invoke();
        invocation
            .key(&key)
            .key(self.keys.worker(&dispatch.worker))
            .key(self.keys.dispatched())
            .key(self.keys.worker_index())
            .key(self.keys.exam_sessions(&exam))
            .key(self.keys.affinity(&exam))
            .arg(dispatch.worker.as_str())
            .arg(
                request
                    .supersede
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            );
        self.permit_request(&mut invocation, &dispatch.worker, request.permit.as_ref());
        let reply: Vec<String> = invocation
            .arg(dispatch_fields(&dispatch))
            .invoke_async(&mut self.conn())
            .await?;
        let mut reply = reply.into_iter();
        let status = reply.next();
        match status.as_deref() {
            Some("reserved") => {
                let malformed = || BackendError::unexpected("reserve", Some("reserved"));
                let slots_left = reply
                    .next()
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(malformed)?;
                let permit = match reply.next().ok_or_else(malformed)?.as_str() {
                    "" => None,
                    n => Some(n.parse::<u32>().map_err(|_| malformed())?),
                };
                let superseded = dispatch_from_fields(&key, pairs(reply))?;
                Ok(Reservation::Reserved {
                    dispatch,
                    superseded,
                    slots_left: u32::try_from(slots_left.max(0)).unwrap_or(u32::MAX),
                    permit,
                })
            }
            Some("existing") => match dispatch_from_fields(&key, pairs(reply))? {
                Some(existing) => Ok(Reservation::Existing(existing)),
                None => Err(BackendError::unexpected("reserve", status.as_deref())),
            },
            Some("full") => Ok(Reservation::Full),
            Some("not_accepting") => Ok(Reservation::NotAccepting),
            Some("ended") => Ok(Reservation::Ended),
            other => Err(BackendError::unexpected("reserve", other)),
        }
    }
}

impl RedisStore {
    async fn run_adopt(
        &self,
        dispatch: &Dispatch,
        sticky_ttl: Duration,
    ) -> BackendResult<Adoption> {
        let mut dispatch = dispatch.clone();
        dispatch.state = DispatchState::Active;
        let key = self.keys.dispatch(&dispatch.key);
        let exam = EncodedExam::of(&dispatch.key.exam_id);
        let since = dispatch.activated_at.unwrap_or(dispatch.reserved_at);
        let reply: Vec<String> = SCRIPTS
            .adopt
            .key(&key)
            .key(self.keys.worker(&dispatch.worker))
            .key(self.keys.dispatched())
            .key(self.keys.worker_index())
            .key(self.keys.exam_sessions(&exam))
            .key(self.keys.affinity(&exam))
            .key(self.keys.sticky_worker(&dispatch.key.exam_id))
            .key(self.keys.sticky_until(&dispatch.key.exam_id))
            .arg(dispatch.worker.as_str())
            .arg(ttl_millis(sticky_ttl))
            .arg(since.plus(sticky_ttl).as_millis())
            .arg(dispatch_fields(&dispatch))
            .invoke_async(&mut self.conn())
            .await?;
        let mut reply = reply.into_iter();
        let status = reply.next();
        match status.as_deref() {
            Some("adopted") => Ok(Adoption::Adopted(dispatch)),
            Some("existing") => match dispatch_from_fields(&key, pairs(reply))? {
                Some(existing) => Ok(Adoption::Existing(existing)),
                None => Err(BackendError::unexpected("adopt", status.as_deref())),
            },
            Some("unknown_worker") => Ok(Adoption::UnknownWorker),
            other => Err(BackendError::unexpected("adopt", other)),
        }
    }
}

impl RedisStore {
    /// `confirm.lua`, giving back `permit` and writing `entries` and
    /// `disruptions` (if any) in the same step; without them, no permit,
    /// outbox or ledger key is passed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_confirm(
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
        let record = self.keys.dispatch(key);
        let mut invocation = SCRIPTS.confirm.prepare_invoke();
        invocation
            .key(&record)
            .key(self.keys.sticky_worker(&key.exam_id))
            .key(self.keys.sticky_until(&key.exam_id))
            .arg(id.to_string())
            .arg(now.as_millis())
            .arg(ttl_millis(sticky_ttl))
            .arg(now.plus(sticky_ttl).as_millis())
            .arg(if session.is_some() { "1" } else { "0" })
            .arg(session.map(|s| s.to_string()).unwrap_or_default());
        self.permit_return(&mut invocation, permit);
        if !entries.is_empty() || !disruptions.is_empty() {
            self.outbox_keys(&mut invocation);
            self.outbox_entries(&mut invocation, entries)?;
            self.ledger_args(&mut invocation, key, disruptions)?;
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(dispatch_from_fields(&record, pairs(reply))?)
    }
}

#[async_trait]
impl DispatchStore for RedisStore {
    async fn reserve(&self, request: &ReserveRequest) -> Result<Reservation> {
        Ok(self.run_reserve(request).await?)
    }

    async fn confirm(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
    ) -> Result<Option<Dispatch>> {
        self.run_confirm(key, id, session, now, sticky_ttl, permit, &[], &[])
            .await
    }

    async fn adopt(&self, dispatch: &Dispatch, sticky_ttl: Duration) -> Result<Adoption> {
        Ok(self.run_adopt(dispatch, sticky_ttl).await?)
    }

    async fn undo(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
        permit: Option<&PermitReturn>,
    ) -> Result<bool> {
        let mut invocation = SCRIPTS.undo.prepare_invoke();
        for k in self.removal_keys(key) {
            invocation.key(k);
        }
        invocation.arg(id.to_string());
        self.removal_options(&mut invocation, hold, fence);
        self.permit_return(&mut invocation, permit);
        let removed: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| fenced(e, fence))?;
        Ok(removed == 1)
    }

    async fn release(
        &self,
        key: &SessionKey,
        id: Option<DispatchId>,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
    ) -> Result<Option<Dispatch>> {
        let keys = self.removal_keys(key);
        let mut invocation = SCRIPTS.release.prepare_invoke();
        for k in &keys {
            invocation.key(k);
        }
        invocation.arg(id.map(|id| id.to_string()).unwrap_or_default());
        self.removal_options(&mut invocation, hold, fence);
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| fenced(e, fence))?;
        Ok(dispatch_from_fields(&keys[0], pairs(reply))?)
    }

    async fn mark_orphaned(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
    ) -> Result<bool> {
        let mut invocation = SCRIPTS.mark_orphaned.prepare_invoke();
        invocation.key(self.keys.dispatch(key)).arg(id.to_string());
        self.fence(&mut invocation, fence);
        let marked: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| fenced(e, fence))?;
        Ok(marked == 1)
    }

    async fn dispatch(&self, key: &SessionKey) -> Result<Option<Dispatch>> {
        let record = self.keys.dispatch(key);
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&record)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(dispatch_from_fields(&record, fields)?)
    }

    async fn worker_dispatches(&self, worker: &WorkerId, limit: usize) -> Result<Vec<Dispatch>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (lo, hi) = index_range(worker);
        let members: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(self.keys.worker_index())
            .arg(lo)
            .arg(hi)
            .arg("LIMIT")
            .arg(0)
            .arg(i64::try_from(limit).unwrap_or(i64::MAX))
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let stem = format!("{} ", worker.as_str());
        let keys: Vec<String> = members
            .iter()
            .filter_map(|m| m.strip_prefix(&stem).map(str::to_owned))
            .collect();
        let mut found = self.read_dispatches(&keys).await?;
        found.retain(|d| &d.worker == worker);
        Ok(found)
    }

    /// Pages through the worker index (`ZRANGEBYLEX` after the last member
    /// seen), not the keyspace: a page costs the same however many other
    /// keys the database holds. The index may hold stale members (a
    /// dispatch since removed, or moved by a supersede); a dispatch is
    /// returned under the member of the worker it is on, so once.
    async fn scan_dispatches(&self, cursor: Option<&str>, count: usize) -> Result<DispatchPage> {
        let from = match cursor {
            None => "-".to_owned(),
            Some(c) if split_index_member(c).is_some() => format!("({c}"),
            Some(_) => return Err(Error::invalid("cursor", "not a cursor of this backend")),
        };
        let count = count.max(1);
        let members: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(self.keys.worker_index())
            .arg(from)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(i64::try_from(count).unwrap_or(i64::MAX))
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let listed: Vec<(WorkerId, String)> = members
            .iter()
            .filter_map(|m| split_index_member(m).map(|(w, k)| (w, k.to_owned())))
            .collect();
        let keys: Vec<String> = listed.iter().map(|(_, k)| k.clone()).collect();
        let read = self.read_dispatch_slots(&keys).await?;
        let dispatches = listed
            .iter()
            .zip(read)
            .filter_map(|((worker, _), d)| d.filter(|d| d.worker == *worker))
            .collect();
        Ok(DispatchPage {
            dispatches,
            next: (members.len() == count)
                .then(|| members.last().cloned())
                .flatten(),
        })
    }

    async fn placement(&self, exam: &ExamId, now: Timestamp) -> Result<ExamPlacement> {
        let encoded = EncodedExam::of(exam);
        let affinity_key = self.keys.affinity(&encoded);
        let (sticky, until, affinity): (Option<String>, Option<String>, HashMap<String, String>) =
            redis::pipe()
                .cmd("GET")
                .arg(self.keys.sticky_worker(exam))
                .cmd("GET")
                .arg(self.keys.sticky_until(exam))
                .cmd("HGETALL")
                .arg(&affinity_key)
                .query_async(&mut self.conn())
                .await
                .map_err(BackendError::from)?;
        // Without the expiry companion (a key written by another tool) the
        // server's TTL alone decides.
        let unexpired = match until.map(|u| u.parse::<u64>()) {
            None => true,
            Some(Ok(until)) => until > now.as_millis(),
            Some(Err(e)) => {
                return Err(BackendError::malformed(
                    self.keys.sticky_until(exam),
                    "sticky expiry",
                    e,
                )
                .into());
            }
        };
        let sticky = sticky
            .filter(|_| unexpired)
            .and_then(|w| WorkerId::parse("worker", w).ok());
        let mut counts = BTreeMap::new();
        for (worker, n) in affinity {
            let n: i64 = n
                .parse()
                .map_err(|e| BackendError::malformed(affinity_key.clone(), "affinity count", e))?;
            if let (Ok(worker), Ok(n @ 1..)) = (WorkerId::parse("worker", worker), u32::try_from(n))
            {
                counts.insert(worker, n);
            }
        }
        Ok(ExamPlacement::new(sticky, counts))
    }

    async fn recount(&self, repair: bool) -> Result<RecountReport> {
        Ok(self.recount_all(repair).await?)
    }
}

impl RedisStore {
    /// Appends the fencing lease to a write's invocation: its key as the
    /// script's last KEYS entry, its holder and token as its last ARGV
    /// entries (see `fence_refusal` in lua/prelude.lua).
    /// A removal's optional keys and arguments, in the order
    /// `removal_options()` of lua/prelude.lua reads them.
    fn removal_options(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        hold: Option<&WorkerId>,
        fence: Option<&Lease>,
    ) {
        match hold {
            Some(worker) => invocation.key(self.keys.worker(worker)).arg("1"),
            None => invocation.arg(""),
        };
        match fence {
            Some(lease) => invocation
                .key(self.keys.lease(&lease.name))
                .arg(&lease.holder)
                .arg(lease.token),
            None => invocation.arg("").arg(""),
        };
    }

    fn fence(&self, invocation: &mut redis::ScriptInvocation<'_>, fence: Option<&Lease>) {
        if let Some(lease) = fence {
            invocation
                .key(self.keys.lease(&lease.name))
                .arg(&lease.holder)
                .arg(lease.token);
        }
    }
}

/// A script's `FENCED` refusal as [`Error::Fenced`]; anything else as the
/// backend being unavailable.
pub(crate) fn fenced(e: redis::RedisError, fence: Option<&Lease>) -> Error {
    match fence {
        Some(lease) if e.code() == Some("FENCED") => lease.refusal(),
        _ => BackendError::from(e).into(),
    }
}
