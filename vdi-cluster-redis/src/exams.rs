//! [`ExamStore`] on Redis: the exams in one hash of JSON under a version
//! counter; each compare-and-set is one Lua script that checks the version
//! and writes (the admission decision is made in core, never in Lua).

use async_trait::async_trait;
use vdi_cluster_core::exam::Exam;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::store::{CalendarWrite, ExamCalendar, ExamStore};
use vdi_cluster_core::{ExamId, Result};

use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

fn outcome(script: &'static str, reply: (i64, i64)) -> Result<CalendarWrite> {
    let version = u64::try_from(reply.1)
        .map_err(|_| BackendError::unexpected(script, Some("negative version")))?;
    Ok(match reply.0 {
        1 => CalendarWrite::Written { version },
        _ => CalendarWrite::Conflict { current: version },
    })
}

#[async_trait]
impl ExamStore for RedisStore {
    async fn exam_calendar(&self) -> Result<ExamCalendar> {
        let key = self.keys.exams();
        let reply: Vec<String> = SCRIPTS
            .exam_calendar
            .key(self.keys.exams_version())
            .key(&key)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut reply = reply.into_iter();
        let version = reply
            .next()
            .ok_or_else(|| BackendError::unexpected("exam_calendar", None))?;
        let version = version.parse().map_err(|e| {
            BackendError::malformed(self.keys.exams_version(), "calendar version", e)
        })?;
        let exams = reply
            .map(|json| {
                serde_json::from_str::<Exam>(&json)
                    .map_err(|e| BackendError::malformed(key.clone(), "exam", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExamCalendar { version, exams })
    }

    async fn put_exam_if_version(&self, exam: &Exam, expected: u64) -> Result<CalendarWrite> {
        let key = self.keys.exams();
        let json = serde_json::to_string(exam)
            .map_err(|e| BackendError::malformed(key.clone(), "exam", e))?;
        let reply: (i64, i64) = SCRIPTS
            .exam_put
            .key(self.keys.exams_version())
            .key(&key)
            .arg(expected)
            .arg(exam.id.as_str())
            .arg(json)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        outcome("exam_put", reply)
    }

    async fn delete_exam_if_version(&self, id: &ExamId, expected: u64) -> Result<CalendarWrite> {
        let reply: (i64, i64) = SCRIPTS
            .exam_delete
            .key(self.keys.exams_version())
            .key(self.keys.exams())
            .key(self.keys.exams_risk())
            .arg(expected)
            .arg(id.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        outcome("exam_delete", reply)
    }

    async fn swap_exam_risk(
        &self,
        id: &ExamId,
        shortfall: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<Option<u32>> {
        let key = self.keys.exams_risk();
        let mut invocation = SCRIPTS.exam_risk_swap.prepare_invoke();
        invocation
            .key(self.keys.exams())
            .key(&key)
            .arg(id.as_str())
            .arg(shortfall.map(|n| n.to_string()).unwrap_or_default());
        if !entries.is_empty() {
            self.outbox_keys(&mut invocation);
            self.outbox_entries(&mut invocation, entries)?;
        }
        let before: Option<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        before
            .map(|n| {
                n.parse()
                    .map_err(|e| BackendError::malformed(key, "at-risk flag", e).into())
            })
            .transpose()
    }
}
