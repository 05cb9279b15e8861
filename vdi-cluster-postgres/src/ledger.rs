//! [`DisruptionLedger`] on `vdi.disruptions` (migration
//! `20261210000000_disruption_ledger.sql`): entries are appended by
//! `vdi.ledger_append` in the transaction of their cause
//! ([`Outbox::confirm_with_outbox`](vdi_cluster_core::outbox::Outbox::confirm_with_outbox))
//! or on their own.

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::ledger::{Disruption, DisruptionLedger};
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
}
