//! A student's own end: read, extended or set by an operator.
//!
//! The end lives on the exam as booked (`extensions`), so a change is a
//! calendar write like a booking: read at a version, decided by
//! [`decide_extension`] against the schedulable capacity now, written by
//! compare-and-set, decided again on a conflict. Concurrent extensions of
//! one exam's students therefore accept exactly what fits (invariant D).
//! An extension that does not fit is refused with what would, unless the
//! operator forces it with a reason; either way the change is audited
//! with its actor and reason.

use super::Exams;
use crate::calendar::CalendarWrite;
use crate::error::{Error, Result};
use crate::exam::{Exam, ExtensionRefusal, MAX_EXTRA_SEC, decide_extension};
use crate::ids::SessionKey;
use crate::service::shared::reason::validate_reason;
use crate::time::Timestamp;

/// How a student's end changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndChange {
    /// Later by this many seconds than it is now (field `extendSec`).
    ExtendBy(u32),
    /// At this instant, not before the exam's end (field `endsAt`); the
    /// exam's end takes the student's extension away.
    EndsAt(Timestamp),
}

/// A student's end as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// The student's session.
    pub key: SessionKey,
    /// The exam's end.
    pub exam_ends_at: Timestamp,
    /// The student's own end.
    pub ends_at: Timestamp,
    /// Seconds past the exam's end.
    pub extra_sec: u32,
}

impl SessionEnd {
    /// `key`'s end in `exam`.
    pub fn of(exam: &Exam, key: &SessionKey) -> Self {
        Self {
            key: key.clone(),
            exam_ends_at: exam.ends_at,
            ends_at: exam.session_ends_at(&key.user_id),
            extra_sec: exam.extra_sec_of(&key.user_id),
        }
    }
}

/// The answer to a change of a student's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndChanged {
    /// Written; the student's end now.
    Granted(SessionEnd),
    /// Not written: it does not fit beside later bookings (HTTP 409).
    Refused(Box<ExtensionRefusal>),
}

/// The extra seconds `change` gives a student whose extra time is
/// `current` in `exam`; errors name the field.
fn new_extra(exam: &Exam, current: u32, change: EndChange) -> Result<u32> {
    let (field, extra) = match change {
        EndChange::ExtendBy(0) => {
            return Err(Error::invalid("extendSec", "must be at least 1"));
        }
        EndChange::ExtendBy(n) => ("extendSec", u64::from(current) + u64::from(n)),
        EndChange::EndsAt(t) if t < exam.ends_at => {
            return Err(Error::invalid(
                "endsAt",
                "must not be before the exam's endsAt",
            ));
        }
        EndChange::EndsAt(t) => ("endsAt", t.since(exam.ends_at).as_secs()),
    };
    u32::try_from(extra)
        .ok()
        .filter(|e| *e <= MAX_EXTRA_SEC)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("a student's end is at most {MAX_EXTRA_SEC} s after the exam's end"),
            )
        })
}

impl Exams {
    /// The student's end, from the booked exam (this replica's cached
    /// calendar); `None` for an exam that is not booked.
    pub async fn session_end(&self, key: &SessionKey) -> Result<Option<SessionEnd>> {
        let calendar = self.placement.cached_calendar().await?;
        Ok(calendar.get(&key.exam_id).map(|e| SessionEnd::of(e, key)))
    }

    /// Changes the student's end (`reason` required, audited with
    /// `actor`). A later end is admitted over the time it adds beside the
    /// calendar; `force` writes it even if it does not fit (audited as
    /// forced, with the shortfall).
    pub async fn change_session_end(
        &self,
        key: &SessionKey,
        change: EndChange,
        reason: &str,
        force: bool,
        actor: &str,
    ) -> Result<EndChanged> {
        let reason = validate_reason(reason)?;
        for _ in 0..self.shared.config.exam_write_attempts.max(1) {
            let calendar = self.shared.store.exam_calendar().await?;
            let exam = calendar
                .get(&key.exam_id)
                .ok_or_else(|| Error::ExamNotFound(key.exam_id.clone()))?;
            let current = exam.extra_sec_of(&key.user_id);
            let extra = new_extra(exam, current, change)?;
            let mut changed = exam.with_extra_sec(&key.user_id, extra);
            changed.updated_at = self.shared.clock.now();
            changed.validate()?;
            let views = self.shared.worker_views().await?;
            let capacity = self.capacity_of(&views);
            let refusal = decide_extension(
                exam,
                &key.user_id,
                extra,
                &calendar.exams,
                &capacity,
                self.shared.clock.now(),
            )
            .err();
            if let (Some(refusal), false) = (&refusal, force) {
                return Ok(EndChanged::Refused(refusal.clone()));
            }
            match self.placement.put_exam(&changed, calendar.version).await? {
                CalendarWrite::Written { .. } => {
                    let end = SessionEnd::of(&changed, key);
                    let mut detail = serde_json::json!({
                        "examId": key.exam_id.as_str(),
                        "userId": key.user_id.as_str(),
                        "extraSecBefore": current,
                        "extraSec": end.extra_sec,
                        "endsAt": end.ends_at.as_millis(),
                        "reason": reason,
                    });
                    if let Some(refusal) = &refusal {
                        detail["forced"] = true.into();
                        detail["shortfall"] = refusal.shortfall.missing.into();
                    }
                    self.shared
                        .audit(actor, "session-end", &key.to_string(), detail)
                        .await?;
                    return Ok(EndChanged::Granted(end));
                }
                CalendarWrite::Conflict { .. } => {
                    tracing::debug!(session = %key, "exam calendar changed meanwhile; deciding again");
                }
            }
        }
        Err(Error::Conflict {
            what: "the exam calendar".into(),
        })
    }
}
