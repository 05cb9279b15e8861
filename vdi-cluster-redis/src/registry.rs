//! [`Registry`] on Redis: one hash per worker, a set of worker codes.

use async_trait::async_trait;
use redis::{ScriptInvocation, Value};
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::store::{CasOutcome, DeleteOutcome, Registry};
use vdi_cluster_core::worker::WorkerSnapshot;
use vdi_cluster_core::{Result, WorkerId, WorkerRecord};

use crate::codec::{count, expected_arg, worker_field, worker_from_fields, worker_json};
use crate::error::{BackendError, BackendResult};
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// The fields of a worker hash a snapshot reads, in this order.
const WORKER_FIELDS: [&str; 3] = [
    worker_field::RECORD,
    worker_field::VERSION,
    worker_field::UNRECORDED,
];

/// [`WORKER_FIELDS`] as read.
type WorkerFields = (Option<String>, Option<String>, Option<String>);

impl RedisStore {
    /// A worker hash's `record`, `version` and `unrecorded` fields (an
    /// `HMGET` of [`WORKER_FIELDS`]) with its dispatched count.
    fn snapshot(
        &self,
        id: &WorkerId,
        (record, version, unrecorded): WorkerFields,
        dispatched: Option<&str>,
    ) -> BackendResult<Option<WorkerSnapshot>> {
        let key = self.keys.worker(id);
        let (Some(record), Some(version)) = (record, version) else {
            return Ok(None);
        };
        let (mut record, version) = worker_from_fields(&key, &record, &version)?;
        record.unrecorded = count(&key, unrecorded.as_deref())?;
        Ok(Some(WorkerSnapshot {
            record,
            version,
            dispatched: count(&self.keys.dispatched(), dispatched)?,
        }))
    }

    async fn read_workers(&self) -> BackendResult<Vec<WorkerSnapshot>> {
        let mut conn = self.conn();
        let mut codes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.workers())
            .query_async(&mut conn)
            .await?;
        codes.sort();
        let ids: Vec<WorkerId> = codes
            .into_iter()
            .filter_map(|code| match WorkerId::parse("code", code) {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a malformed worker code in the index");
                    None
                }
            })
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(self.keys.worker(id))
                .arg(&WORKER_FIELDS[..]);
        }
        pipe.cmd("HGETALL").arg(self.keys.dispatched());
        let mut replies: Vec<Value> = pipe.query_async(&mut conn).await?;
        let counts: std::collections::HashMap<String, String> = match replies.pop() {
            Some(v) => redis::from_redis_value(v).map_err(redis::RedisError::from)?,
            None => return Err(BackendError::unexpected("workers", None)),
        };
        let mut out = Vec::with_capacity(ids.len());
        for (id, reply) in ids.iter().zip(replies) {
            let fields: WorkerFields =
                redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
            let dispatched = counts.get(id.as_str()).map(String::as_str);
            if let Some(s) = self.snapshot(id, fields, dispatched)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The keys and arguments every compare-and-set of a worker record
    /// starts with (`put_worker.lua`, `release_lost.lua`): KEYS the worker,
    /// the registered workers and the dispatched counts; ARGV the code,
    /// the expected version (`''`: no record), the record, its maximum,
    /// unrecorded count and accepting flag.
    pub(crate) fn worker_write(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        record: &WorkerRecord,
        expected: Option<u64>,
    ) -> BackendResult<()> {
        let key = self.keys.worker(&record.id);
        let json = worker_json(&key, record)?;
        invocation
            .key(&key)
            .key(self.keys.workers())
            .key(self.keys.dispatched())
            .arg(record.id.as_str())
            .arg(expected_arg(expected))
            .arg(json)
            .arg(record.max_sessions())
            .arg(record.unrecorded)
            .arg(if record.accepting() { "1" } else { "0" });
        Ok(())
    }

    /// A worker version as a script answered it.
    pub(crate) fn parse_version(&self, id: &WorkerId, text: &str) -> BackendResult<u64> {
        text.parse()
            .map_err(|e| BackendError::malformed(self.keys.worker(id), "worker version", e))
    }

    /// `put_worker.lua`: compare-and-set on `expected`, and on the
    /// dispatched count when `dispatched` is given.
    pub(crate) async fn write_worker(
        &self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<CasOutcome> {
        let mut invocation = SCRIPTS.put_worker.prepare_invoke();
        self.worker_write(&mut invocation, record, expected)?;
        invocation.arg(dispatched.map(|n| n.to_string()).unwrap_or_default());
        if !entries.is_empty() {
            self.outbox_keys(&mut invocation);
            self.outbox_entries(&mut invocation, entries)?;
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let version = |text: &str| self.parse_version(&record.id, text);
        match reply.as_slice() {
            [status, v] if status == "written" => Ok(CasOutcome::Written {
                version: version(v)?,
            }),
            [status, v] if status == "conflict" => Ok(CasOutcome::Conflict {
                current: if v.is_empty() {
                    None
                } else {
                    Some(version(v)?)
                },
            }),
            other => Err(
                BackendError::unexpected("put_worker", other.first().map(String::as_str)).into(),
            ),
        }
    }
}

#[async_trait]
impl Registry for RedisStore {
    async fn ping(&self) -> Result<()> {
        // A real read of the keyspace allocations use, not just PING.
        let _: u64 = redis::cmd("HLEN")
            .arg(self.keys.dispatched())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    fn primary(&self) -> Option<String> {
        RedisStore::primary(self)
    }

    async fn worker(&self, id: &WorkerId) -> Result<Option<WorkerSnapshot>> {
        let (fields, dispatched): (WorkerFields, Option<String>) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(self.keys.worker(id))
            .arg(&WORKER_FIELDS[..])
            .cmd("HGET")
            .arg(self.keys.dispatched())
            .arg(id.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(self.snapshot(id, fields, dispatched.as_deref())?)
    }

    async fn workers(&self) -> Result<Vec<WorkerSnapshot>> {
        Ok(self.read_workers().await?)
    }

    async fn put_worker(&self, record: &WorkerRecord, expected: Option<u64>) -> Result<CasOutcome> {
        self.write_worker(record, expected, None, &[]).await
    }

    async fn put_worker_if_dispatched(
        &self,
        record: &WorkerRecord,
        expected: u64,
        dispatched: u32,
    ) -> Result<CasOutcome> {
        self.write_worker(record, Some(expected), Some(dispatched), &[])
            .await
    }

    async fn delete_worker(&self, id: &WorkerId, expected: u64) -> Result<DeleteOutcome> {
        self.remove_worker(id, expected, &[]).await
    }
}

impl RedisStore {
    /// `delete_worker.lua`, with `entries` written in the same step when
    /// the record is deleted.
    pub(crate) async fn remove_worker(
        &self,
        id: &WorkerId,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<DeleteOutcome> {
        let mut invocation = SCRIPTS.delete_worker.prepare_invoke();
        invocation
            .key(self.keys.worker(id))
            .key(self.keys.workers())
            .key(self.keys.dispatched())
            .arg(id.as_str())
            .arg(expected);
        if !entries.is_empty() {
            self.outbox_keys(&mut invocation);
            self.outbox_entries(&mut invocation, entries)?;
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        match reply.as_slice() {
            [status] if status == "deleted" => Ok(DeleteOutcome::Deleted),
            [status] if status == "conflict" => Ok(DeleteOutcome::Conflict),
            [status, n] if status == "has_dispatches" => Ok(DeleteOutcome::HasDispatches(count(
                &self.keys.dispatched(),
                Some(n),
            )?)),
            other => Err(BackendError::unexpected(
                "delete_worker",
                other.first().map(String::as_str),
            )
            .into()),
        }
    }
}
