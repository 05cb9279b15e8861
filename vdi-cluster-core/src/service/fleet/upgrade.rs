//! An agent upgrade under the change freeze. Upgrading a worker's agent
//! restarts it on the host (`install-worker.sh --upgrade`), so the worker
//! is out of service while it does: the host asks the control plane first,
//! and the change is checked against the exam calendar like a drain. The
//! upgrade itself is the host's; the control plane keeps the decision and
//! the audit trail.

use super::Fleet;
use super::freeze::FreezeOverride;
use crate::error::Result;
use crate::ids::WorkerId;

impl Fleet {
    /// Clears an upgrade of worker `id`'s agent by `actor` with the change
    /// freeze: `Ok` when taking the worker out keeps every exam under way
    /// fitting as it does (audited as `agent-upgrade`);
    /// [`Error::Frozen`](crate::Error::Frozen) with the exams and
    /// `safeFrom` when it would make one fit worse, unless `force` forces
    /// it (audited as `freeze-override` too, `worker.freeze_overridden`
    /// sent). A worker without a record is
    /// [`Error::WorkerNotFound`](crate::Error::WorkerNotFound).
    pub async fn clear_upgrade(
        &self,
        id: &WorkerId,
        actor: &str,
        force: FreezeOverride<'_>,
    ) -> Result<()> {
        self.worker_view(id).await?;
        let forced = self.check_freeze(id, "upgrade", actor, force).await?;
        let forced_by = match &force {
            FreezeOverride::Force { reason } if forced.is_some() => Some(*reason),
            _ => None,
        };
        if let Some(forced) = forced {
            self.forced_appended(id, actor, forced).await?;
        }
        let detail = serde_json::json!({ "forcedPastFreeze": forced_by });
        self.shared
            .audit(actor, "agent-upgrade", id.as_str(), detail)
            .await
    }
}
