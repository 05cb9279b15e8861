//! Group commit of confirmations: concurrent `confirm` calls on one store
//! handle are written together, as one statement over many rows
//! (`confirm_many.sql`), so PostgreSQL commits once for all of them.
//!
//! A call queues its confirmation and waits for its own answer, given only
//! once the statement that wrote it has committed: batching never answers
//! before the write is durable. The first call on an idle handle is
//! written at once, alone; calls that arrive while [`FLUSHERS`]
//! statements are in flight wait for the next one, which takes all of
//! them (up to [`MAX_BATCH`]). Writing runs in spawned tasks, so a caller
//! that gives up (its call timeout, a dropped request) never takes other
//! callers' confirmations down with it.
//!
//! Confirmations of different sessions touch different dispatch rows, and
//! `vdi.confirm` takes the exam's sticky row with `SKIP LOCKED`: a batch
//! waits on no lock another batch holds but the pacing rows of the workers
//! whose start permits its confirmations give back, taken in the order of
//! the workers, so batches do not deadlock. If a
//! batch fails as a whole, its confirmations are written one by one, each
//! answering for itself.

use std::mem;
use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::PgPool;
use sqlx::types::Json;
use sqlx::types::Uuid;
use tokio::sync::oneshot;
use vdi_cluster_core::Dispatch;

use crate::dispatch::ConfirmArgs;
use crate::error::PgError;
use crate::sql;

/// Statements in flight at once per store handle.
pub(crate) const FLUSHERS: usize = 2;

/// Confirmations in one statement at most.
pub(crate) const MAX_BATCH: usize = 256;

type Answer = Result<Option<Dispatch>, PgError>;

struct Pending {
    args: ConfirmArgs,
    reply: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// Flushing tasks running.
    flushers: usize,
}

/// The confirmations of one store handle waiting to be written.
#[derive(Default)]
pub(crate) struct ConfirmBatcher {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for ConfirmBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = self.lock();
        f.debug_struct("ConfirmBatcher")
            .field("pending", &q.pending.len())
            .field("flushers", &q.flushers)
            .finish()
    }
}

impl ConfirmBatcher {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `args` with whatever else is waiting, and answers once it is
    /// committed.
    pub(crate) async fn confirm(self: &Arc<Self>, pool: &PgPool, args: ConfirmArgs) -> Answer {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.lock();
            q.pending.push(Pending { args, reply });
            let start = q.flushers < FLUSHERS;
            if start {
                q.flushers += 1;
            }
            start
        };
        if start {
            tokio::spawn(flush(Arc::clone(self), pool.clone()));
        }
        answer.await.map_err(|_| PgError::BatchLost)?
    }

    /// Up to [`MAX_BATCH`] waiting confirmations, or `None` (and one
    /// flusher fewer) when none waits.
    fn take(&self) -> Option<Vec<Pending>> {
        let mut q = self.lock();
        if q.pending.is_empty() {
            q.flushers -= 1;
            return None;
        }
        let taken = q.pending.len().min(MAX_BATCH);
        let rest = q.pending.split_off(taken);
        Some(mem::replace(&mut q.pending, rest))
    }
}

/// Counts a flusher out if its task ends by a panic, so others start.
struct FlusherGuard(Arc<ConfirmBatcher>, bool);

impl Drop for FlusherGuard {
    fn drop(&mut self) {
        if self.1 {
            self.0.lock().flushers -= 1;
        }
    }
}

/// Writes batches until none waits.
async fn flush(batcher: Arc<ConfirmBatcher>, pool: PgPool) {
    let mut guard = FlusherGuard(Arc::clone(&batcher), true);
    loop {
        let Some(batch) = batcher.take() else {
            // `take` counted this flusher out.
            guard.1 = false;
            return;
        };
        write(&pool, batch).await;
    }
}

/// Writes `batch` (one statement when it holds several) and answers each.
/// The confirmations that give back a start permit lock their worker's
/// pacing row: ordered by worker, two batches take those locks in the same
/// order and never wait on each other in a cycle.
async fn write(pool: &PgPool, mut batch: Vec<Pending>) {
    if batch.len() > 1 {
        batch.sort_by(|a, b| a.args.permit.worker.cmp(&b.args.permit.worker));
        match confirm_many(pool, &batch).await {
            Ok(answers) => {
                for (p, answer) in batch.into_iter().zip(answers) {
                    let _ = p.reply.send(Ok(answer));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, size = batch.len(), "a batch of confirmations failed; writing them one by one");
            }
        }
    }
    for p in batch {
        let answer = p.args.run(pool).await;
        let _ = p.reply.send(answer);
    }
}

/// The answers of `confirm_many.sql` for `batch`, in its order.
async fn confirm_many(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Option<Dispatch>>, PgError> {
    let exams: Vec<&str> = batch.iter().map(|p| p.args.key.exam_id.as_str()).collect();
    let users: Vec<&str> = batch.iter().map(|p| p.args.key.user_id.as_str()).collect();
    let ids: Vec<Uuid> = batch.iter().map(|p| p.args.id.0).collect();
    let sessions: Vec<Option<Json<&serde_json::Value>>> = batch
        .iter()
        .map(|p| p.args.session.as_ref().map(Json))
        .collect();
    let now: Vec<i64> = batch.iter().map(|p| p.args.now).collect();
    let until: Vec<i64> = batch.iter().map(|p| p.args.sticky_until).collect();
    let permits = || batch.iter().map(|p| &p.args.permit);
    let permit_workers: Vec<Option<&str>> = permits().map(|p| p.worker.as_deref()).collect();
    let permit_ids: Vec<&str> = permits().map(|p| p.id.as_str()).collect();
    let millis: Vec<Option<i32>> = permits().map(|p| p.millis).collect();
    let in_flight: Vec<Option<i32>> = permits().map(|p| p.in_flight).collect();
    let keep: Vec<i32> = permits().map(|p| p.keep).collect();
    let rows: Vec<(i64, Option<Json<Dispatch>>)> = sqlx::query_as(sql::CONFIRM_MANY)
        .bind(exams)
        .bind(users)
        .bind(ids)
        .bind(sessions)
        .bind(now)
        .bind(until)
        .bind(permit_workers)
        .bind(permit_ids)
        .bind(millis)
        .bind(in_flight)
        .bind(keep)
        .fetch_all(pool)
        .await?;
    let mut answers: Vec<Option<Dispatch>> = vec![None; batch.len()];
    for (n, record) in rows {
        let slot = usize::try_from(n - 1)
            .ok()
            .and_then(|i| answers.get_mut(i))
            .ok_or(PgError::OutOfRange {
                what: "confirmation's position",
                value: n,
            })?;
        *slot = record.map(|Json(d)| d);
    }
    Ok(answers)
}
