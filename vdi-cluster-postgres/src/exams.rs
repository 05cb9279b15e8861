//! [`ExamStore`] on `vdi.exams` under the one-row `vdi.exam_calendar`
//! version: each compare-and-set is one statement that bumps the version
//! only if it is the expected one and writes only if it did. The admission
//! decision is made in core, never in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::exam::Exam;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::store::{CalendarWrite, ExamCalendar, ExamStore};
use vdi_cluster_core::{ExamId, Result};

use crate::outbox::finish;
use crate::{PgStore, sql, to_u32, to_u64};

impl PgStore {
    async fn calendar_write(
        &self,
        statement: &'static str,
        expected: u64,
        id: &ExamId,
        exam: Option<&Exam>,
    ) -> Result<CalendarWrite> {
        let Ok(expected) = i64::try_from(expected) else {
            // No version this backend wrote is that large.
            return Ok(CalendarWrite::Conflict { current: 0 });
        };
        self.call(async {
            let mut query = sqlx::query(statement).bind(expected).bind(id.as_str());
            if let Some(exam) = exam {
                query = query.bind(Json(exam));
            }
            let row = query.fetch_one(self.pool()).await?;
            let written: Option<i64> = row.try_get("written")?;
            let current: i64 = row.try_get("current")?;
            Ok(match written {
                Some(v) => CalendarWrite::Written {
                    version: to_u64("calendar version", v)?,
                },
                None => CalendarWrite::Conflict {
                    current: to_u64("calendar version", current)?,
                },
            })
        })
        .await
    }
}

#[async_trait]
impl ExamStore for PgStore {
    async fn exam_calendar(&self) -> Result<ExamCalendar> {
        self.call(async {
            let row = sqlx::query(sql::EXAM_CALENDAR)
                .fetch_one(self.pool())
                .await?;
            let Json(exams): Json<Vec<Exam>> = row.try_get("exams")?;
            Ok(ExamCalendar {
                version: to_u64("calendar version", row.try_get("version")?)?,
                exams,
            })
        })
        .await
    }

    async fn put_exam_if_version(&self, exam: &Exam, expected: u64) -> Result<CalendarWrite> {
        self.calendar_write(sql::PUT_EXAM, expected, &exam.id, Some(exam))
            .await
    }

    async fn delete_exam_if_version(&self, id: &ExamId, expected: u64) -> Result<CalendarWrite> {
        self.calendar_write(sql::DELETE_EXAM, expected, id, None)
            .await
    }

    async fn swap_exam_risk(
        &self,
        id: &ExamId,
        shortfall: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<Option<u32>> {
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let Some(row) = sqlx::query(sql::LOCK_EXAM_RISK)
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let before: Option<i32> = row.try_get("missing")?;
            let before = before
                .map(|n| to_u32("at-risk flag", i64::from(n)))
                .transpose()?;
            match shortfall {
                Some(n) => {
                    sqlx::query(sql::SET_EXAM_RISK)
                        .bind(id.as_str())
                        .bind(i32::try_from(n).unwrap_or(i32::MAX))
                        .execute(&mut *tx)
                        .await?
                }
                None => {
                    sqlx::query(sql::CLEAR_EXAM_RISK)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?
                }
            };
            finish(tx, before != shortfall, entries).await?;
            Ok(before)
        })
        .await
    }
}
