//! [`StoreContents`]: what a store export holds.

use crate::credential::WorkerCredential;
use crate::dispatch::Dispatch;
use crate::exam::Exam;
use crate::ids::WorkerId;
use crate::ledger::Disruption;
use crate::outbox::{OutboxEntry, WebhookEndpoint};
use crate::rehearsal::Rehearsal;
use crate::scale::CapacityRequest;
use crate::scheduled::ScheduledAction;
use crate::store::{AuditEntry, JoinToken};
use crate::worker::WorkerRecord;

/// Everything of a store that must survive a move to another store (see
/// the [module's table](super)), each part in a stable order so that two
/// exports of equal stores are equal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreContents {
    /// Workers' records, by code, each with its
    /// [`unrecorded`](WorkerRecord::unrecorded) count.
    pub workers: Vec<WorkerRecord>,
    /// Workers' own credentials, by code (a credential may exist without a
    /// record: a worker that joined and never reported).
    pub worker_credentials: Vec<(WorkerId, WorkerCredential)>,
    /// Join tokens, by id.
    pub join_tokens: Vec<JoinToken>,
    /// Booked exams, by id.
    pub exams: Vec<Exam>,
    /// Webhook endpoints, by id.
    pub webhooks: Vec<WebhookEndpoint>,
    /// Outbox entries not yet delivered (pending or leased), by id.
    pub outbox: Vec<OutboxEntry>,
    /// The audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
    /// Live dispatches (active or orphaned), by session.
    pub dispatches: Vec<Dispatch>,
    /// The scale hook's capacity requests, in every state, by id.
    pub capacity_requests: Vec<CapacityRequest>,
    /// Scheduled drains still open (pending, or claimed by a leader), by
    /// id.
    pub scheduled: Vec<ScheduledAction>,
    /// The disruption ledger's entries, by session and id.
    pub disruptions: Vec<Disruption>,
    /// Exams' rehearsals (each worker's last check), by exam.
    pub rehearsals: Vec<Rehearsal>,
}

impl StoreContents {
    /// Sorts every part into its stable order (the audit trail keeps its
    /// own).
    pub fn sort(&mut self) {
        self.workers.sort_by(|a, b| a.id.cmp(&b.id));
        self.worker_credentials.sort_by(|a, b| a.0.cmp(&b.0));
        self.join_tokens.sort_by(|a, b| a.id.cmp(&b.id));
        self.exams.sort_by(|a, b| a.id.cmp(&b.id));
        self.webhooks.sort_by(|a, b| a.id.cmp(&b.id));
        self.outbox.sort_by(|a, b| a.id.cmp(&b.id));
        self.dispatches.sort_by(|a, b| a.key.cmp(&b.key));
        self.capacity_requests.sort_by(|a, b| a.id.cmp(&b.id));
        self.scheduled.sort_by(|a, b| a.id.cmp(&b.id));
        self.disruptions
            .sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id)));
        self.rehearsals.sort_by(|a, b| a.exam_id.cmp(&b.exam_id));
    }
}
