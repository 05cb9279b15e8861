//! [`AuditLog`] on `vdi.audit`: an append-only table, read newest first.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::store::{AuditEntry, AuditLog};
use vdi_cluster_core::{Page, Paged, Result, Timestamp};

use crate::{PgStore, millis, page_bounds, page_total, sql, to_u64};

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

    async fn audit_page(&self, page: Page) -> Result<Paged<AuditEntry>> {
        let (offset, limit) = page_bounds(page);
        self.call(async {
            let rows = sqlx::query(sql::AUDIT_PAGE)
                .bind(offset)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                let Some(at) = row.try_get::<Option<i64>, _>("at")? else {
                    continue;
                };
                let Json(detail) = row.try_get("detail")?;
                items.push(AuditEntry {
                    at: Timestamp(to_u64("audit time", at)?),
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail,
                });
            }
            Ok(Paged {
                items,
                total: page_total(&rows)?,
            })
        })
        .await
    }
}
