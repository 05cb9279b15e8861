//! [`AuditLog`] on Redis: one list of JSON entries, newest first, trimmed
//! to the configured length in the same `MULTI` block as each push.

use async_trait::async_trait;
use vdi_cluster_core::store::{AuditEntry, AuditLog};
use vdi_cluster_core::{Page, Paged, Result};

use crate::error::BackendError;
use crate::store::RedisStore;

#[async_trait]
impl AuditLog for RedisStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let key = self.keys.audit();
        let json = serde_json::to_string(entry)
            .map_err(|e| BackendError::malformed(key.clone(), "audit entry", e))?;
        let kept = i64::try_from(self.audit_kept).unwrap_or(i64::MAX);
        redis::pipe()
            .atomic()
            .cmd("LPUSH")
            .arg(&key)
            .arg(json)
            .ignore()
            .cmd("LTRIM")
            .arg(&key)
            .arg(0)
            .arg(kept - 1)
            .ignore()
            .exec_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn audit_page(&self, page: Page) -> Result<Paged<AuditEntry>> {
        let key = self.keys.audit();
        let (total, entries) = self.list_page(&key, page).await?;
        let mut items = Vec::with_capacity(entries.len());
        for json in entries {
            items.push(
                serde_json::from_str(&json)
                    .map_err(|e| BackendError::malformed(key.clone(), "audit entry", e))?,
            );
        }
        Ok(Paged { items, total })
    }
}

impl RedisStore {
    /// One page of the list at `key` (`LRANGE`, head first) and its
    /// length (`LLEN`), read together in one `MULTI` block.
    pub(crate) async fn list_page(
        &self,
        key: &str,
        page: Page,
    ) -> Result<(usize, Vec<String>), BackendError> {
        let start = i64::try_from(page.offset()).unwrap_or(i64::MAX);
        let stop = match page.limit() {
            Some(0) => {
                let total: usize = redis::cmd("LLEN")
                    .arg(key)
                    .query_async(&mut self.conn())
                    .await?;
                return Ok((total, Vec::new()));
            }
            Some(n) => start.saturating_add(i64::try_from(n).unwrap_or(i64::MAX)) - 1,
            None => -1,
        };
        let answer = redis::pipe()
            .atomic()
            .cmd("LLEN")
            .arg(key)
            .cmd("LRANGE")
            .arg(key)
            .arg(start)
            .arg(stop)
            .query_async(&mut self.conn())
            .await?;
        Ok(answer)
    }
}
