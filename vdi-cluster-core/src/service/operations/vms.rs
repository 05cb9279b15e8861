//! Aetherium's resource view: every session (its dispatch) and every
//! prewarmed machine (the pool reports stored in the workers' records) as
//! a VM of its worker's slot size; the pure parts are in [`crate::vm`].

use super::Operations;
use crate::error::{Error, Result};
use crate::vm::{Vm, VmId, VmSize};
use crate::worker::WorkerView;

/// A worker's slot size, once it has reported its capacity.
fn slot_size(view: &WorkerView) -> Option<VmSize> {
    view.record.capacity.as_ref().map(VmSize::from)
}

impl Operations {
    /// Up to `limit` VMs, by worker code: each worker's sessions, then the
    /// machines of its prewarm pools, exam by exam.
    pub async fn vms(&self, limit: usize) -> Result<Vec<Vm>> {
        let mut views = self.shared.worker_views().await?;
        views.sort_by(|a, b| a.id().cmp(b.id()));
        let mut out = Vec::new();
        for view in &views {
            let room = limit.saturating_sub(out.len());
            if room == 0 {
                break;
            }
            let size = slot_size(view);
            if view.dispatched > 0 {
                let dispatches = self.shared.store.worker_dispatches(view.id(), room).await?;
                out.extend(dispatches.iter().map(|d| Vm::of_dispatch(d, size)));
            }
            let pools = view.record.prewarm_pool.exams.iter();
            let machines = pools.flat_map(|(exam, pool)| Vm::pool(view.id(), exam, *pool, size));
            out.extend(machines.take(limit.saturating_sub(out.len())));
        }
        Ok(out)
    }

    /// The VM `id` names, or [`Error::VmNotFound`] naming it: a session
    /// with no dispatch, or a prewarm pool (or worker) that does not hold
    /// that many machines.
    pub async fn vm(&self, id: &VmId) -> Result<Vm> {
        let not_found = || Error::VmNotFound(id.to_string());
        match id {
            VmId::Session(key) => {
                let dispatch = self
                    .shared
                    .store
                    .dispatch(key)
                    .await?
                    .ok_or_else(not_found)?;
                let size = match self.shared.worker_view(&dispatch.worker).await {
                    Ok(view) => slot_size(&view),
                    Err(Error::WorkerNotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                Ok(Vm::of_dispatch(&dispatch, size))
            }
            VmId::Prewarmed {
                worker,
                exam,
                index,
            } => {
                let view = match self.shared.worker_view(worker).await {
                    Err(Error::WorkerNotFound(_)) => return Err(not_found()),
                    other => other?,
                };
                let pool = view.record.prewarm_pool.of(exam);
                Vm::prewarmed(worker, exam, pool, *index, slot_size(&view)).ok_or_else(not_found)
            }
        }
    }
}
