//! [`WaitingRoom`] on the in-memory backend: each exam's queue in arrival
//! order, its claim and its totals, under the store's one mutex.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::{ExamId, UserId};
use crate::time::Timestamp;
use crate::waiting_room::{Completion, Enqueued, Standing, WaitingRoom};
use crate::waiting_room::{ExamQueue, QueueClaim, QueueEntry, QueuePosition, position_from_index};

/// The waiting rooms' part of the state.
#[derive(Debug, Default)]
pub(super) struct QueueState {
    /// Last token handed out.
    tokens: u64,
    queues: HashMap<ExamId, ExamQueue>,
}

impl QueueState {
    fn position(queue: &mut ExamQueue, user: &UserId, now: Timestamp) -> Option<QueuePosition> {
        let index = queue.entries.iter().position(|e| &e.user == user)?;
        let entry = &mut queue.entries[index];
        entry.last_seen = entry.last_seen.max(now);
        let entry = entry.clone();
        Some(QueuePosition {
            position: position_from_index(index),
            entry,
            totals: queue.totals,
        })
    }

    /// Removes `user`'s entry (a claim on them stays).
    fn remove(queue: &mut ExamQueue, user: &UserId) -> bool {
        let before = queue.entries.len();
        queue.entries.retain(|e| &e.user != user);
        queue.entries.len() != before
    }

    fn holds(&self, claim: &QueueClaim) -> bool {
        self.queues
            .get(&claim.exam)
            .and_then(|q| q.claim.as_ref())
            .is_some_and(|c| c.token == claim.token && c.user == claim.user)
    }
}

#[async_trait]
impl WaitingRoom for MemoryStore {
    async fn enqueue(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Enqueued> {
        let mut s = self.lock()?;
        let queue = s.queues.queues.entry(exam.clone()).or_default();
        if let Some(p) = QueueState::position(queue, user, now) {
            return Ok(Enqueued::Already(p));
        }
        let entry = QueueEntry {
            user: user.clone(),
            enqueued_at: now,
            last_seen: now,
        };
        queue.entries.push(entry.clone());
        Ok(Enqueued::Joined(QueuePosition {
            position: position_from_index(queue.entries.len() - 1),
            entry,
            totals: queue.totals,
        }))
    }

    async fn touch_queued(&self, exam: &ExamId, user: &UserId, now: Timestamp) -> Result<Standing> {
        let mut s = self.lock()?;
        let Some(queue) = s.queues.queues.get_mut(exam) else {
            return Ok(Standing::NotQueued { waiting: 0 });
        };
        Ok(match QueueState::position(queue, user, now) {
            Some(p) => Standing::Queued(p),
            None => Standing::NotQueued {
                waiting: u32::try_from(queue.entries.len()).unwrap_or(u32::MAX),
            },
        })
    }

    async fn exam_queue(&self, exam: &ExamId) -> Result<ExamQueue> {
        let s = self.lock()?;
        Ok(s.queues.queues.get(exam).cloned().unwrap_or_default())
    }

    async fn leave_queue(&self, exam: &ExamId, user: &UserId) -> Result<bool> {
        let mut s = self.lock()?;
        Ok(s.queues
            .queues
            .get_mut(exam)
            .is_some_and(|q| QueueState::remove(q, user)))
    }

    async fn claim_queue_head(
        &self,
        exam: &ExamId,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<QueueClaim>> {
        let mut s = self.lock()?;
        let state = &mut s.queues;
        let Some(queue) = state.queues.get_mut(exam) else {
            return Ok(None);
        };
        let Some(head) = queue.entries.first() else {
            return Ok(None);
        };
        if queue.claim.as_ref().is_some_and(|c| c.until > now) {
            return Ok(None);
        }
        state.tokens += 1;
        let claim = QueueClaim {
            exam: exam.clone(),
            user: head.user.clone(),
            token: state.tokens,
            until,
        };
        queue.claim = Some(claim.clone());
        Ok(Some(claim))
    }

    async fn complete_queue_claim(&self, claim: &QueueClaim, now: Timestamp) -> Result<Completion> {
        let mut s = self.lock()?;
        if !s.queues.holds(claim) {
            return Ok(Completion::Lost);
        }
        let Some(queue) = s.queues.queues.get_mut(&claim.exam) else {
            return Ok(Completion::Lost);
        };
        queue.claim = None;
        if !QueueState::remove(queue, &claim.user) {
            return Ok(Completion::Left);
        }
        let totals = &mut queue.totals;
        totals.placed += 1;
        totals.first_placed_at.get_or_insert(now);
        totals.last_placed_at = Some(now);
        Ok(Completion::Placed)
    }

    async fn release_queue_claim(&self, claim: &QueueClaim) -> Result<()> {
        let mut s = self.lock()?;
        if s.queues.holds(claim)
            && let Some(queue) = s.queues.queues.get_mut(&claim.exam)
        {
            queue.claim = None;
        }
        Ok(())
    }

    async fn abandon_queued(
        &self,
        exam: &ExamId,
        user: &UserId,
        seen_before: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let mut s = self.lock()?;
        let Some(queue) = s.queues.queues.get_mut(exam) else {
            return Ok(false);
        };
        let stale = queue
            .entries
            .iter()
            .any(|e| &e.user == user && e.last_seen < seen_before);
        let claimed = queue
            .claim
            .as_ref()
            .is_some_and(|c| &c.user == user && c.until > now);
        if !stale || claimed {
            return Ok(false);
        }
        QueueState::remove(queue, user);
        queue.totals.abandoned += 1;
        Ok(true)
    }

    async fn queued_exams(&self) -> Result<Vec<ExamId>> {
        let s = self.lock()?;
        let exams: BTreeMap<&ExamId, ()> = s
            .queues
            .queues
            .iter()
            .filter(|(_, q)| !q.entries.is_empty())
            .map(|(e, _)| (e, ()))
            .collect();
        Ok(exams.into_keys().cloned().collect())
    }
}
