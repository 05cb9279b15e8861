//! [`DisruptionLedger`] on `vdi.disruptions` (migration
//! `20261210000000_disruption_ledger.sql`): entries are appended by
//! `vdi.ledger_append` in the transaction of their cause
//! ([`Outbox::confirm_with_outbox`](vdi_cluster_core::outbox::Outbox::confirm_with_outbox))
//! or on their own. Open interruptions are rows of
//! `vdi.open_interruptions` (migration
//! `20261215000000_open_interruptions.sql`), one per session and kind.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::ledger::{Disruption, DisruptionLedger, OpenInterruption};
use vdi_cluster_core::{ExamId, Result, SessionKey};

use crate::error::PgError;
use crate::{PgStore, sql};

/// One entry as `vdi.ledger_append` reads it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppendRow<'a> {
    exam_id: &'a str,
    user_id: &'a str,
    id: &'a str,
    started_at: u64,
    entry: &'a Disruption,
}

/// Appends `entries` with `executor` (the transaction of their cause);
/// answers how many were new.
pub(crate) async fn append<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    entries: &[Disruption],
) -> Result<u32, PgError> {
    let rows: Vec<AppendRow<'_>> = entries
        .iter()
        .map(|e| AppendRow {
            exam_id: e.key.exam_id.as_str(),
            user_id: e.key.user_id.as_str(),
            id: &e.id,
            started_at: e.started_at.as_millis(),
            entry: e,
        })
        .collect();
    let written: i32 = sqlx::query_scalar(sql::LEDGER_APPEND)
        .bind(Json(rows))
        .fetch_one(executor)
        .await?;
    Ok(u32::try_from(written).unwrap_or(0))
}

/// Opens `open` with `executor` unless its session has one of its kind.
pub(crate) async fn open<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    open: &OpenInterruption,
) -> Result<(), PgError> {
    sqlx::query(sql::OPEN_INTERRUPTION)
        .bind(open.key.exam_id.as_str())
        .bind(open.key.user_id.as_str())
        .bind(open.kind.name())
        .bind(Json(open))
        .execute(executor)
        .await?;
    Ok(())
}

fn entries(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<Disruption>, PgError> {
    rows.iter()
        .map(|r| {
            let Json(entry): Json<Disruption> = r.try_get("entry")?;
            Ok(entry)
        })
        .collect()
}

#[async_trait]
impl DisruptionLedger for PgStore {
    async fn append_disruptions(&self, entries: &[Disruption]) -> Result<u32> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.call(append(self.pool(), entries)).await
    }

    async fn disruptions(&self, key: &SessionKey) -> Result<Vec<Disruption>> {
        self.call(async {
            let rows = sqlx::query(sql::DISRUPTIONS)
                .bind(key.exam_id.as_str())
                .bind(key.user_id.as_str())
                .fetch_all(self.pool())
                .await?;
            entries(&rows)
        })
        .await
    }

    async fn exam_disruptions(&self, exam: &ExamId) -> Result<Vec<Disruption>> {
        self.call(async {
            let rows = sqlx::query(sql::EXAM_DISRUPTIONS)
                .bind(exam.as_str())
                .fetch_all(self.pool())
                .await?;
            entries(&rows)
        })
        .await
    }

    async fn ledger_exams(&self) -> Result<Vec<ExamId>> {
        self.call(async {
            let rows: Vec<String> = sqlx::query_scalar(sql::LEDGER_EXAMS)
                .fetch_all(self.pool())
                .await?;
            rows.into_iter()
                .map(|e| {
                    ExamId::parse("examId", e).map_err(|source| PgError::Corrupt {
                        what: "ledger exam",
                        source,
                    })
                })
                .collect()
        })
        .await
    }

    async fn open_interruption(&self, o: &OpenInterruption) -> Result<OpenInterruption> {
        self.call(async {
            open(self.pool(), o).await?;
            let stored: Option<Json<OpenInterruption>> =
                sqlx::query_scalar(sql::OPEN_INTERRUPTION_OF)
                    .bind(o.key.exam_id.as_str())
                    .bind(o.key.user_id.as_str())
                    .bind(o.kind.name())
                    .fetch_optional(self.pool())
                    .await?;
            // Closed between the two statements: it was stored.
            Ok(stored.map_or_else(|| o.clone(), |Json(s)| s))
        })
        .await
    }

    async fn open_interruptions(&self, key: &SessionKey) -> Result<Vec<OpenInterruption>> {
        self.call(async {
            let rows: Vec<Json<OpenInterruption>> = sqlx::query_scalar(sql::OPEN_INTERRUPTIONS)
                .bind(key.exam_id.as_str())
                .bind(key.user_id.as_str())
                .fetch_all(self.pool())
                .await?;
            Ok(rows.into_iter().map(|Json(o)| o).collect())
        })
        .await
    }

    async fn close_interruption(&self, o: &OpenInterruption) -> Result<bool> {
        self.call(async {
            let done = sqlx::query(sql::CLOSE_INTERRUPTION)
                .bind(o.key.exam_id.as_str())
                .bind(o.key.user_id.as_str())
                .bind(o.kind.name())
                .bind(Json(o))
                .execute(self.pool())
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}
