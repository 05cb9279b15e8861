//! Students' desktops released at their own end, on the leader's tick.
//!
//! A session of a booked exam lives until the student's own end (the
//! exam's `endsAt`, later for an extended student) plus
//! [`ServiceConfig::session_grace`]; then the leader releases it with
//! `session.expired`, after `session.expiring`
//! [`ServiceConfig::session_expiry_warning`] before the end. Without this
//! a session lives until someone releases it or the stale cleanup.
//!
//! Once across replicas and leaders: the warnings of an end are written to
//! the outbox, fenced by the leader's lease under a key naming the session
//! and its end, ahead of the exam's mark `expiryWarnedThrough` (a
//! compare-and-set on the calendar), and emitted when the mark is written;
//! a crash between the two writes the same keys again, which the store
//! skips. An expiry is written the same way ahead of the release, and
//! emitted by the replica whose release removed the dispatch; a release
//! twice is a no-op. Exams are looked at from the warning before their
//! end until [`EXPIRY_LOOKBACK`] after their last student's end.
//!
//! [`ServiceConfig::session_grace`]: crate::service::ServiceConfig::session_grace
//! [`ServiceConfig::session_expiry_warning`]: crate::service::ServiceConfig::session_expiry_warning

use std::time::Duration;

use super::Exams;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::events::EventKind;
use crate::exam::Exam;
use crate::outbox::alerts;
use crate::store::Lease;
use crate::time::Timestamp;
use crate::worker::MAX_LIVE_SESSIONS;

/// How long after an exam's last end the leader still looks for its
/// sessions to release (1 hour): later leftovers go to the stale cleanup.
pub const EXPIRY_LOOKBACK: Duration = Duration::from_secs(3_600);

/// What one expiry step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExpiryTick {
    /// Sessions warned (`session.expiring` written).
    pub warned: u32,
    /// Sessions released at their end (`session.expired`).
    pub expired: u32,
}

impl Exams {
    /// The leader's step (writes fenced by `fence`): warns the sessions
    /// whose end is near and releases those whose end plus the grace has
    /// passed. Idempotent across replicas (see the module docs).
    pub async fn expire_sessions(&self, fence: Option<&Lease>) -> Result<ExpiryTick> {
        let now = self.shared.clock.now();
        let grace = self.shared.config.session_grace;
        let warning = self.shared.config.session_expiry_warning;
        let calendar = self.placement.cached_calendar().await?;
        let mut tick = ExpiryTick::default();
        for exam in calendar.exams.iter().filter(|e| {
            let last = e.ends_at.plus(Duration::from_secs(
                e.extensions
                    .iter()
                    .map(|s| u64::from(s.extra_sec))
                    .max()
                    .unwrap_or(0),
            ));
            e.ends_at.minus(warning) <= now && now < last.plus(grace + EXPIRY_LOOKBACK)
        }) {
            let sessions = self.exam_sessions(exam).await?;
            tick.warned += self.warn_expiring(exam, &sessions, fence).await?;
            for d in &sessions {
                let ends_at = exam.session_ends_at(&d.key.user_id);
                if ends_at.plus(grace) <= now && self.expire(d, ends_at, fence).await? {
                    tick.expired += 1;
                }
            }
        }
        Ok(tick)
    }

    /// The exam's live dispatches: on the workers its affinity names.
    async fn exam_sessions(&self, exam: &Exam) -> Result<Vec<Dispatch>> {
        let now = self.shared.clock.now();
        let placement = self.shared.store.placement(&exam.id, now).await?;
        let mut sessions = Vec::new();
        for worker in placement.affinity.keys() {
            let listed = self
                .shared
                .store
                .worker_dispatches(worker, MAX_LIVE_SESSIONS)
                .await?;
            sessions.extend(listed.into_iter().filter(|d| d.key.exam_id == exam.id));
        }
        Ok(sessions)
    }

    /// Warns the sessions whose end is the latest one due for a warning
    /// and not warned yet (or earlier and not past), then marks the exam.
    async fn warn_expiring(
        &self,
        exam: &Exam,
        sessions: &[Dispatch],
        fence: Option<&Lease>,
    ) -> Result<u32> {
        let now = self.shared.clock.now();
        let grace = self.shared.config.session_grace;
        let warning = self.shared.config.session_expiry_warning;
        let after = exam.expiry_warned_through.unwrap_or(Timestamp(0));
        let mut ends: Vec<Timestamp> = std::iter::once(exam.ends_at)
            .chain(
                exam.extensions
                    .iter()
                    .map(|s| exam.session_ends_at(&s.user_id)),
            )
            .filter(|&e| e > after && e.minus(warning) <= now)
            .collect();
        ends.sort_unstable();
        let Some(&through) = ends.last() else {
            return Ok(0);
        };
        let mut kinds = Vec::new();
        for d in sessions {
            let ends_at = exam.session_ends_at(&d.key.user_id);
            if after < ends_at && ends_at <= through && now < ends_at {
                let kind = EventKind::SessionExpiring {
                    session: d.key.clone(),
                    ends_at,
                    released_at: ends_at.plus(grace),
                };
                let key = alerts::observed_key(&kind, ends_at.as_millis());
                self.shared.append_observed(&kind, key, fence).await?;
                kinds.push(kind);
            }
        }
        let warned = u32::try_from(kinds.len()).unwrap_or(u32::MAX);
        if self
            .mark(&exam.id, |e| e.expiry_warned_through = Some(through))
            .await?
        {
            for kind in kinds {
                self.shared.emit(kind);
            }
        }
        Ok(warned)
    }

    /// Writes `session.expired` of `d` ahead of its release, then releases
    /// it; whether this call removed the dispatch.
    async fn expire(
        &self,
        d: &Dispatch,
        ends_at: Timestamp,
        fence: Option<&Lease>,
    ) -> Result<bool> {
        let kind = EventKind::SessionExpired {
            session: d.key.clone(),
            ends_at,
            worker: d.worker.clone(),
        };
        let key = alerts::observed_key(&kind, ends_at.as_millis());
        self.shared.append_observed(&kind, key, fence).await?;
        let released = self.placement.release(&d.key).await?;
        if released.is_some() {
            tracing::info!(session = %d.key, ends_at = ends_at.as_millis(), "released at the student's end");
            self.shared.emit(kind);
        }
        Ok(released.is_some())
    }
}
