//! `exam.queue_forming`: the leader's watch over the waiting rooms.
//!
//! An exam's queue *forms* when it reaches
//! [`queue_alert_at`](crate::service::ServiceConfig::queue_alert_at) waiting
//! students (the first, by default). That is reported once per episode:
//! the leader remembers the exams it reported until their queue empties.
//! The event is written fenced by the leader's lease under a key naming
//! the exam and its head (who, and when they joined), so two leaders looking at the same
//! queue write it once; a leader that takes over mid-episode whose queue
//! head has changed meanwhile may report it once more.

use std::collections::HashSet;

use super::Exams;
use crate::error::Result;
use crate::events::EventKind;
use crate::ids::ExamId;
use crate::outbox::alerts;
use crate::store::Lease;

/// The exams whose forming queue this replica reported, until it empties.
pub(crate) type QueueEpisodes = std::sync::Mutex<HashSet<ExamId>>;

impl Exams {
    /// Reports every exam whose waiting room reached
    /// [`queue_alert_at`](crate::service::ServiceConfig::queue_alert_at) students
    /// and was not reported since it last was empty (see the module
    /// docs). Returns the events written.
    pub async fn watch_queues(&self, fence: Option<&Lease>) -> Result<Vec<EventKind>> {
        let threshold =
            usize::try_from(self.shared.config.queue_alert_at.max(1)).unwrap_or(usize::MAX);
        let mut waiting_now = HashSet::new();
        let mut formed = Vec::new();
        for exam in self.shared.store.queued_exams().await? {
            let queue = self.shared.store.exam_queue(&exam).await?;
            let Some(head) = queue.entries.first() else {
                continue;
            };
            waiting_now.insert(exam.clone());
            if queue.entries.len() < threshold || self.queue_reported(&exam) {
                continue;
            }
            let kind = EventKind::ExamQueueForming {
                exam: exam.clone(),
                waiting: u32::try_from(queue.entries.len()).unwrap_or(u32::MAX),
            };
            let episode = format!("{}@{}", head.user, head.enqueued_at.as_millis());
            let key = alerts::observed_key(&kind, episode);
            self.shared
                .record_observed(kind.clone(), key, fence)
                .await?;
            self.queue_episodes().insert(exam);
            formed.push(kind);
        }
        self.queue_episodes().retain(|e| waiting_now.contains(e));
        Ok(formed)
    }

    fn queue_reported(&self, exam: &ExamId) -> bool {
        self.queue_episodes().contains(exam)
    }

    fn queue_episodes(&self) -> std::sync::MutexGuard<'_, HashSet<ExamId>> {
        self.queue_episodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
