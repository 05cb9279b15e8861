//! [`WaitingRoom`] on Redis: per exam, a sorted set of waiting students by
//! arrival number, a hash of their entries and a hash with the claim on the
//! first student and the totals; one Lua script per atomic step
//! (`lua/waiting_room_*.lua`). Which student to promote or abandon is
//! decided in core; the scripts only check and write.

use async_trait::async_trait;
use redis::{Script, ScriptInvocation};
use vdi_cluster_core::store::{Completion, Enqueued, Standing, WaitingRoom};
use vdi_cluster_core::waiting_room::{
    ExamQueue, QueueClaim, QueueEntry, QueuePosition, QueueTotals,
};
use vdi_cluster_core::{ExamId, Result, Timestamp, UserId};

use crate::error::{BackendError, BackendResult};
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// Reads the numbers of a script's reply, naming the script when one is
/// not what it wrote.
struct Reply {
    script: &'static str,
    fields: std::vec::IntoIter<String>,
}

impl Reply {
    fn new(script: &'static str, fields: Vec<String>) -> Self {
        Self {
            script,
            fields: fields.into_iter(),
        }
    }

    fn text(&mut self) -> BackendResult<String> {
        self.fields
            .next()
            .ok_or_else(|| BackendError::unexpected(self.script, Some("short reply")))
    }

    fn number(&mut self) -> BackendResult<u64> {
        let text = self.text()?;
        text.parse()
            .map_err(|_| BackendError::unexpected(self.script, Some("not a number")))
    }

    fn instant(&mut self) -> BackendResult<Option<Timestamp>> {
        let text = self.text()?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(|ms| Some(Timestamp::from_millis(ms)))
            .map_err(|_| BackendError::unexpected(self.script, Some("not an instant")))
    }

    fn totals(&mut self) -> BackendResult<QueueTotals> {
        Ok(QueueTotals {
            placed: self.number()?,
            abandoned: self.number()?,
            first_placed_at: self.instant()?,
            last_placed_at: self.instant()?,
        })
    }

    /// `position, enqueued_at, last_seen, totals…` of `user`.
    fn position(&mut self, user: &UserId) -> BackendResult<QueuePosition> {
        let position = u32::try_from(self.number()?).unwrap_or(u32::MAX);
        let entry = QueueEntry {
            user: user.clone(),
            enqueued_at: Timestamp::from_millis(self.number()?),
            last_seen: Timestamp::from_millis(self.number()?),
        };
        Ok(QueuePosition {
            position,
            entry,
            totals: self.totals()?,
        })
    }

    /// One `"enqueued_at last_seen"` entry of `user`.
    fn entry(&mut self, user: UserId) -> BackendResult<QueueEntry> {
        let text = self.text()?;
        let (enqueued, seen) = text
            .split_once(' ')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| BackendError::unexpected(self.script, Some("malformed entry")))?;
        Ok(QueueEntry {
            user,
            enqueued_at: Timestamp::from_millis(enqueued),
            last_seen: Timestamp::from_millis(seen),
        })
    }

    fn user(&mut self) -> BackendResult<UserId> {
        UserId::parse("userId", self.text()?)
            .map_err(|_| BackendError::unexpected(self.script, Some("not a user id")))
    }
}

impl RedisStore {
    /// `script` with `exam`'s room as its first `KEYS`, as every
    /// `waiting_room_*.lua` that reads the entries takes them: the order,
    /// the entries, the state.
    fn on_room<'a>(&self, script: &'a Script, exam: &ExamId) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.queue_order(exam))
            .key(self.keys.queue_entries(exam))
            .key(self.keys.queue_state(exam));
        invocation
    }

    /// [`on_room`](Self::on_room) and, as `KEYS[4]`, the set of exams
    /// with someone waiting: the steps that may add or remove a room's
    /// last student.
    fn on_listed_room<'a>(&self, script: &'a Script, exam: &ExamId) -> ScriptInvocation<'a> {
        let mut invocation = self.on_room(script, exam);
        invocation.key(self.keys.queued_exams());
        invocation
    }
}

#[async_trait]
impl WaitingRoom for RedisStore {
    async fn enqueue(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Enqueued> {
        let reply: Vec<String> = self
            .on_listed_room(&SCRIPTS.waiting_room_enqueue, exam)
            .key(self.keys.queue_seq())
            .arg(exam.as_str())
            .arg(user.as_str())
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut reply = Reply::new("waiting_room_enqueue", reply);
        let joined = reply.number()? == 1;
        let position = reply.position(user)?;
        Ok(if joined {
            Enqueued::Joined(position)
        } else {
            Enqueued::Already(position)
        })
    }

    async fn touch_queued(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Standing> {
        let reply: Vec<String> = self
            .on_room(&SCRIPTS.waiting_room_touch, exam)
            .arg(user.as_str())
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut reply = Reply::new("waiting_room_touch", reply);
        Ok(if reply.number()? == 1 {
            Standing::Queued(reply.position(user)?)
        } else {
            Standing::NotQueued {
                waiting: u32::try_from(reply.number()?).unwrap_or(u32::MAX),
            }
        })
    }

    async fn exam_queue(&self, exam: &ExamId) -> Result<ExamQueue> {
        let reply: Vec<String> = self
            .on_room(&SCRIPTS.waiting_room_read, exam)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut reply = Reply::new("waiting_room_read", reply);
        let claim_user = reply.text()?;
        let claim_token = reply.text()?;
        let claim_until = reply.instant()?;
        let totals = reply.totals()?;
        let claim = match (claim_user.is_empty(), claim_until) {
            (false, Some(until)) => Some(QueueClaim {
                exam: exam.clone(),
                user: UserId::parse("userId", claim_user).map_err(|_| {
                    BackendError::unexpected("waiting_room_read", Some("claim user"))
                })?,
                token: claim_token.parse().map_err(|_| {
                    BackendError::unexpected("waiting_room_read", Some("claim token"))
                })?,
                until,
            }),
            _ => None,
        };
        let mut entries = Vec::new();
        while reply.fields.len() > 0 {
            let user = reply.user()?;
            entries.push(reply.entry(user)?);
        }
        Ok(ExamQueue {
            entries,
            claim,
            totals,
        })
    }

    async fn leave_queue(&self, exam: &ExamId, user: &UserId) -> Result<bool> {
        let left: i64 = self
            .on_listed_room(&SCRIPTS.waiting_room_leave, exam)
            .arg(exam.as_str())
            .arg(user.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(left == 1)
    }

    async fn claim_queue_head(
        &self,
        exam: &ExamId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<QueueClaim>> {
        let reply: Vec<String> = SCRIPTS
            .waiting_room_claim
            .key(self.keys.queue_order(exam))
            .key(self.keys.queue_state(exam))
            .key(self.keys.queue_seq())
            .arg(now.as_millis())
            .arg(until.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        if reply.is_empty() {
            return Ok(None);
        }
        let mut reply = Reply::new("waiting_room_claim", reply);
        Ok(Some(QueueClaim {
            exam: exam.clone(),
            user: reply.user()?,
            token: reply.number()?,
            until,
        }))
    }

    async fn complete_queue_claim(&self, claim: &QueueClaim, now: Timestamp) -> Result<Completion> {
        let exam = &claim.exam;
        let done: i64 = self
            .on_listed_room(&SCRIPTS.waiting_room_complete, exam)
            .arg(exam.as_str())
            .arg(claim.user.as_str())
            .arg(claim.token)
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        match done {
            1 => Ok(Completion::Placed),
            2 => Ok(Completion::Left),
            0 => Ok(Completion::Lost),
            _ => Err(BackendError::unexpected("waiting_room_complete", None).into()),
        }
    }

    async fn release_queue_claim(&self, claim: &QueueClaim) -> Result<()> {
        let _: i64 = SCRIPTS
            .waiting_room_release
            .key(self.keys.queue_state(&claim.exam))
            .arg(claim.user.as_str())
            .arg(claim.token)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn abandon_queued(
        &self,
        exam: &ExamId,
        user: &UserId,
        seen_before: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let done: i64 = self
            .on_listed_room(&SCRIPTS.waiting_room_abandon, exam)
            .arg(exam.as_str())
            .arg(user.as_str())
            .arg(seen_before.as_millis())
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(done == 1)
    }

    async fn queued_exams(&self) -> Result<Vec<ExamId>> {
        let key = self.keys.queued_exams();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        ids.into_iter()
            .map(|id| {
                ExamId::parse("examId", id)
                    .map_err(|e| BackendError::malformed(key.clone(), "queued exam", e).into())
            })
            .collect()
    }
}
