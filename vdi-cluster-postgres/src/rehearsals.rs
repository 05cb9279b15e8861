//! [`Rehearsals`] on `vdi.rehearsals`: insert-if-absent or compare-and-set
//! on the version in one statement, in the transaction that appends its
//! outbox entries; a removal compares the version in its one statement
//! too. Which workers fail is decided in core, never in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use vdi_cluster_core::Result;
use vdi_cluster_core::ids::ExamId;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::rehearsal::{Rehearsal, Rehearsals, StoredRehearsal};

use crate::outbox::finish;
use crate::{PgStore, sql, to_u64};

fn stored(row: &PgRow) -> std::result::Result<StoredRehearsal, crate::error::PgError> {
    let Json(rehearsal): Json<Rehearsal> = row.try_get("rehearsal")?;
    Ok(StoredRehearsal {
        rehearsal,
        version: to_u64("rehearsal version", row.try_get("version")?)?,
    })
}

#[async_trait]
impl Rehearsals for PgStore {
    async fn rehearsal(&self, exam: &ExamId) -> Result<Option<StoredRehearsal>> {
        self.call(async {
            let row = sqlx::query(sql::REHEARSAL)
                .bind(exam.as_str())
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(stored).transpose()
        })
        .await
    }

    async fn rehearsals(&self) -> Result<Vec<StoredRehearsal>> {
        self.call(async {
            let rows = sqlx::query(sql::REHEARSALS).fetch_all(self.pool()).await?;
            rows.iter().map(stored).collect()
        })
        .await
    }

    async fn put_rehearsal(
        &self,
        rehearsal: &Rehearsal,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let Ok(expected) = i64::try_from(expected) else {
            // No version this backend wrote is that large.
            return Ok(false);
        };
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let wrote = sqlx::query(sql::PUT_REHEARSAL)
                .bind(rehearsal.exam_id.as_str())
                .bind(expected)
                .bind(Json(rehearsal))
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            finish(tx, wrote, entries).await?;
            Ok(wrote)
        })
        .await
    }

    async fn remove_rehearsal(&self, exam: &ExamId, expected: u64) -> Result<bool> {
        let Ok(expected) = i64::try_from(expected) else {
            return Ok(false);
        };
        self.call(async {
            let removed = sqlx::query(sql::REMOVE_REHEARSAL)
                .bind(exam.as_str())
                .bind(expected)
                .fetch_optional(self.pool())
                .await?
                .is_some();
            Ok(removed)
        })
        .await
    }
}
