//! [`AuditLog`] in memory: the newest entries first, at most
//! [`AUDIT_KEPT`].

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::page::{Page, Paged};
use crate::store::{AuditEntry, AuditLog};

/// Audit entries kept in memory.
const AUDIT_KEPT: usize = 10_000;

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut s = self.lock()?;
        s.audit.push_front(entry.clone());
        s.audit.truncate(AUDIT_KEPT);
        Ok(())
    }

    async fn audit_page(&self, page: Page) -> Result<Paged<AuditEntry>> {
        Ok(page.take(self.lock()?.audit.iter()).map(AuditEntry::clone))
    }
}
