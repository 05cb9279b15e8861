//! [`AuditLog`] on Redis: one list of JSON entries, newest first, trimmed
//! to the configured length in the same `MULTI` block as each push.

use async_trait::async_trait;
use vdi_cluster_core::Result;
use vdi_cluster_core::store::{AuditEntry, AuditLog};

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

    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.keys.audit();
        let last = i64::try_from(limit).unwrap_or(i64::MAX) - 1;
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(last)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut out = Vec::with_capacity(entries.len());
        for json in entries {
            out.push(
                serde_json::from_str(&json)
                    .map_err(|e| BackendError::malformed(key.clone(), "audit entry", e))?,
            );
        }
        Ok(out)
    }
}
