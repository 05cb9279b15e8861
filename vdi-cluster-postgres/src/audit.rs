//! [`AuditLog`] on `vdi.audit`: an append-only table, read newest first.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::store::{AuditEntry, AuditLog};
use vdi_cluster_core::{Result, Timestamp};

use crate::{PgStore, millis, row_limit, sql, to_u64};

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let at = millis("at", entry.at)?;
        self.call(async {
            sqlx::query(sql::APPEND_AUDIT)
                .bind(at)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target)
                .bind(Json(&entry.detail))
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.call(async {
            let rows = sqlx::query(sql::RECENT_AUDIT)
                .bind(row_limit(limit))
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|row| {
                    let Json(detail) = row.try_get("detail")?;
                    Ok(AuditEntry {
                        at: Timestamp(to_u64("audit time", row.try_get("at")?)?),
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        target: row.try_get("target")?,
                        detail,
                    })
                })
                .collect()
        })
        .await
    }
}
