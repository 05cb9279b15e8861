//! Registration and joining with codes the control plane assigns (seed
//! 003), and deregistration with a reason.
//!
//! The candidates are [`worker::assign`](crate::worker)'s; a candidate is
//! taken with the backend's insert-if-absent (`put_worker` expecting no
//! record, or the join's atomic claim), so two replicas never hand out one
//! code to two workers.

use super::CAS_ATTEMPTS;
use super::Fleet;
use super::credentials::JoinOutcome;
use crate::credential::JoinRefusal;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::WorkerId;
use crate::store::{CasOutcome, Lane};
use crate::validation::ValidationError;
use crate::worker::{
    ASSIGN_ATTEMPTS, HostInfo, Registrant, WorkerDescription, WorkerRecord, WorkerView,
    another_live_process, base_code, candidate, same_worker,
};

/// A join under an assigned code ([`Fleet::join_assigned`](crate::service::Fleet::join_assigned)).
#[derive(Debug, Clone)]
pub struct AssignedJoin {
    /// The hash of the join token presented.
    pub token_hash: String,
    /// The code asked for, if any.
    pub requested: Option<WorkerId>,
    /// The worker's description.
    pub description: WorkerDescription,
    /// Its host metadata, stored with it.
    pub host: HostInfo,
    /// A requested code that is taken is refused (as by `join`) instead
    /// of giving way to another.
    pub keep_requested: bool,
}

/// Longest deregistration reason, in characters.
pub const MAX_REASON_LEN: usize = 500;

fn check_reason(reason: Option<&str>) -> Result<(), ValidationError> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_LEN || r.chars().any(char::is_control) => {
            Err(ValidationError::new(
                "reason",
                format!("must be at most {MAX_REASON_LEN} characters without control characters"),
            ))
        }
        _ => Ok(()),
    }
}

impl Fleet {
    /// Registers a worker under a code the control plane assigns: the
    /// `requested` one, or one derived from its host name, unless another
    /// worker (on another host) holds it — then a code with a random
    /// suffix. A worker on the same host gets its code back (registration
    /// is idempotent, as [`register_as`](Self::register_as)). The answer
    /// names the code assigned. `host` is stored with the worker.
    ///
    /// A registrant that may move a worker to another host
    /// ([`Registrant::may_move_host`]) gets the code it requested as it
    /// is. Candidates for which `skip` is true (codes the caller's API
    /// reserves) are passed over. Its store calls run on the [liveness
    /// lane](Lane::Liveness).
    pub async fn register_assigned(
        &self,
        requested: Option<WorkerId>,
        description: WorkerDescription,
        host: HostInfo,
        who: Registrant,
        skip: impl Fn(&WorkerId) -> bool,
    ) -> Result<WorkerView> {
        let work = self.assign_and_register(requested, description, host, who, skip);
        Lane::Liveness.scope(work).await
    }

    /// [`register_assigned`](Self::register_assigned)'s work.
    async fn assign_and_register(
        &self,
        requested: Option<WorkerId>,
        description: WorkerDescription,
        host: HostInfo,
        who: Registrant,
        skip: impl Fn(&WorkerId) -> bool,
    ) -> Result<WorkerView> {
        description.validate()?;
        host.validate()?;
        let exact = requested.is_some() && who.may_move_host();
        let base = base_code(requested.as_ref(), &description, &host);
        let nonce = uuid::Uuid::new_v4().as_u64_pair().0;
        for attempt in 0..ASSIGN_ATTEMPTS {
            let id = candidate(&base, attempt, nonce.rotate_left(attempt as u32 * 24));
            if skip(&id) {
                continue;
            }
            match self.shared.store.worker(&id).await? {
                Some(s) if exact || self.same_process(&s.record, &description, &host) => {
                    let view = self.register_as(id.clone(), description, who).await?;
                    return self.store_host(&id, &host).await.map(|v| v.unwrap_or(view));
                }
                Some(_) => {}
                None if exact => {
                    let view = self.register_as(id.clone(), description, who).await?;
                    return self.store_host(&id, &host).await.map(|v| v.unwrap_or(view));
                }
                None => {
                    if description.api_base_url.is_empty() {
                        return Err(ValidationError::new(
                            "apiBaseUrl",
                            "required for a new worker: an absolute http:// or https:// URL with a host",
                        )
                        .into());
                    }
                    let mut record = WorkerRecord::registered(
                        id.clone(),
                        description.clone(),
                        self.shared.clock.now(),
                    );
                    record.host = host.clone();
                    let registered = EventKind::WorkerRegistered { worker: id.clone() };
                    if let CasOutcome::Written { .. } = self
                        .shared
                        .put_worker_alerting(&record, None, None, &[&registered])
                        .await?
                    {
                        self.shared.emit(registered);
                        self.placement.invalidate_snapshot();
                        return self.shared.worker_view(&id).await;
                    }
                }
            }
        }
        Err(Error::Conflict {
            what: format!("worker code {base}: no free code among {ASSIGN_ATTEMPTS} candidates"),
        })
    }

    /// Whether the worker `stored` is the one registering as `description`
    /// on `host`: on the same host, and not while another live process
    /// holds it from another URL or host name (that one keeps its code;
    /// this one gets another).
    fn same_process(
        &self,
        stored: &WorkerRecord,
        description: &WorkerDescription,
        host: &HostInfo,
    ) -> bool {
        let live = self.is_live(stored, self.shared.clock.now());
        same_worker(&stored.description, description)
            && !another_live_process(stored, live, None, description, host)
    }

    /// Merges `host` into a stored worker's; `None` when nothing changed.
    async fn store_host(&self, id: &WorkerId, host: &HostInfo) -> Result<Option<WorkerView>> {
        if host.is_empty() {
            return Ok(None);
        }
        for _ in 0..CAS_ATTEMPTS {
            let stored = self
                .shared
                .store
                .worker(id)
                .await?
                .ok_or_else(|| Error::WorkerNotFound(id.clone()))?;
            let mut record = stored.record.clone();
            record.host = record.host.merged(host);
            if let CasOutcome::Written { .. } = self
                .shared
                .store
                .put_worker(&record, Some(stored.version))
                .await?
            {
                return self.shared.worker_view(id).await.map(Some);
            }
        }
        Err(Error::Conflict {
            what: format!("worker {id}"),
        })
    }

    /// [`join`](Self::join) under an assigned code: the requested one or
    /// one derived from the host name or description, and another
    /// candidate while the code is taken — unless `keep_requested`. `secret_hash` gives the hash of the credential that
    /// would be issued for a candidate (a credential names its worker);
    /// candidates for which `skip` is true are passed over.
    pub async fn join_assigned(
        &self,
        join: AssignedJoin,
        secret_hash: impl Fn(&WorkerId) -> String,
        skip: impl Fn(&WorkerId) -> bool,
    ) -> Result<JoinOutcome> {
        let AssignedJoin {
            token_hash,
            requested,
            description,
            host,
            keep_requested,
        } = join;
        let host = &host;
        let token_hash = token_hash.as_str();
        let keep_requested = keep_requested && requested.is_some();
        description.validate()?;
        host.validate()?;
        let base = base_code(requested.as_ref(), &description, host);
        let nonce = uuid::Uuid::new_v4().as_u64_pair().0;
        for attempt in 0..ASSIGN_ATTEMPTS {
            let id = candidate(&base, attempt, nonce.rotate_left(attempt as u32 * 24));
            if skip(&id) {
                continue;
            }
            let outcome = self
                .join(
                    token_hash,
                    id.clone(),
                    description.clone(),
                    &secret_hash(&id),
                )
                .await?;
            match outcome {
                JoinOutcome::Refused(JoinRefusal::CodeTaken { .. }) if !keep_requested => {}
                JoinOutcome::Joined(joined) => {
                    let mut joined = *joined;
                    if let Some(view) = self.store_host(&id, host).await? {
                        joined.worker = view;
                    }
                    return Ok(JoinOutcome::Joined(Box::new(joined)));
                }
                refused => return Ok(refused),
            }
        }
        Err(Error::Conflict {
            what: format!("worker code {base}: no free code among {ASSIGN_ATTEMPTS} candidates"),
        })
    }

    /// [`deregister`](Self::deregister) with the worker's `reason`
    /// (minicloud's, docs/compat/minicloud.md), kept on the worker until it comes back and written to
    /// the audit trail.
    pub async fn deregister_with_reason(
        &self,
        id: &WorkerId,
        actor: &str,
        reason: Option<String>,
    ) -> Result<WorkerView> {
        check_reason(reason.as_deref())?;
        let reason = reason.filter(|r| !r.trim().is_empty());
        for _ in 0..CAS_ATTEMPTS {
            let stored = self
                .shared
                .store
                .worker(id)
                .await?
                .ok_or_else(|| Error::WorkerNotFound(id.clone()))?;
            let mut record = stored.record.clone();
            if record.deregistered_at.is_some() {
                return self.shared.worker_view(id).await;
            }
            record.deregistered_at = Some(self.shared.clock.now());
            record.deregister_reason.clone_from(&reason);
            let removed = EventKind::WorkerRemoved { worker: id.clone() };
            if let CasOutcome::Written { .. } = self
                .shared
                .put_worker_alerting(&record, Some(stored.version), None, &[&removed])
                .await?
            {
                self.placement.invalidate_snapshot();
                self.shared.emit(removed);
                let detail = match &reason {
                    Some(r) => serde_json::json!({ "reason": r }),
                    None => serde_json::Value::Null,
                };
                self.shared
                    .audit(actor, "deregister", id.as_str(), detail)
                    .await?;
                return self.shared.worker_view(id).await;
            }
        }
        Err(Error::Conflict {
            what: format!("worker {id}"),
        })
    }
}
