//! Moving a deployment between stores: everything that must survive,
//! read from one store and written into another, whatever their backends.
//!
//! [`export`] reads a store's [`StoreContents`] through the storage
//! traits' read-all operations; [`import`] checks them
//! ([`StoreContents::validate`]) and writes them through the traits'
//! ordinary writes, so the copy is written once for every pair of
//! backends. The JSON form of a dump (its format version and field names)
//! is the protocol crate's; this module holds no serialisation.
//!
//! What is copied, and how it is written:
//!
//! | part | read with | written with |
//! |---|---|---|
//! | workers' registrations, settings, last reports, unrecorded slots | [`Registry::workers`] | [`Registry::put_worker`] (insert only) |
//! | workers' own credentials (hashes only) | [`Credentials::worker_credentials`] | [`Credentials::put_worker_credential`] (insert only) |
//! | join tokens (hashes, uses left) | [`Credentials::join_tokens`] | [`Credentials::put_join_token`] |
//! | the exam calendar | [`ExamStore::exam_calendar`] | [`ExamStore::put_exam_if_version`] |
//! | webhook endpoints (with their signing secrets) | [`Outbox::webhooks`] | [`Outbox::put_webhook`] |
//! | undelivered outbox entries (pending or leased) | [`Outbox::deliveries`] | [`Outbox::append_outbox`] (due at once, same ids) |
//! | the audit trail | [`AuditLog::recent_audit`] | [`AuditLog::append_audit`], oldest first |
//! | live dispatches (active and orphaned) | [`DispatchStore::scan_dispatches`] | [`DispatchStore::adopt`] (with their counters), then [`DispatchStore::mark_orphaned`] |
//! | the scale hook's capacity requests (every state) | [`CapacityRequests::capacity_requests`] | [`CapacityRequests::insert_capacity_request`] (insert if absent, at version 1) |
//! | open scheduled drains (pending, or claimed) | [`ScheduledActions::open_scheduled`] | [`ScheduledActions::put_scheduled`] (insert only) |
//! | the disruption ledger's entries | [`DisruptionLedger::ledger_exams`], [`DisruptionLedger::exam_disruptions`] | [`DisruptionLedger::append_disruptions`] (an entry already stored under its session and id is skipped) |
//! | exams' rehearsals (each worker's last check) | [`Rehearsals::rehearsals`] | [`Rehearsals::put_rehearsal`] (insert if absent, at version 1) |
//!
//! Not copied, because the cluster rebuilds it: reservations in flight
//! (the source reclaims them; a session that did start is adopted from
//! its worker's next report), per-worker and per-exam counters (recounted
//! from the dispatches as they are written), the sticky worker of each
//! exam (set by the adoption of its dispatches), exams' at-risk flags
//! (the leader's next tick evaluates them), waiting rooms (students poll
//! again, and a wait's or a refusal's open interruption with them: the
//! ledger counts a wait from the new store's queue), leases and the
//! reconcile cursor, delivered or failed deliveries'
//! histories, scheduled actions that finished (done, cancelled, failed:
//! their outcome is in the audit trail and the outbox), and operators'
//! page sessions (operators sign in again). A drain a leader had claimed
//! when the source stopped is copied claimed: once its claim runs out, the
//! new store's leader claims and fires it (a drain repeated is a no-op).
//!
//! An export is not a snapshot of one instant: stop the control planes
//! writing to the source first (a cold copy), or use the engine's own
//! backup for a hot one.
//!
//! [`Registry::workers`]: crate::store::Registry::workers
//! [`Registry::put_worker`]: crate::store::Registry::put_worker
//! [`Credentials::worker_credentials`]: crate::store::Credentials::worker_credentials
//! [`Credentials::put_worker_credential`]: crate::store::Credentials::put_worker_credential
//! [`Credentials::join_tokens`]: crate::store::Credentials::join_tokens
//! [`Credentials::put_join_token`]: crate::store::Credentials::put_join_token
//! [`ExamStore::exam_calendar`]: crate::calendar::ExamStore::exam_calendar
//! [`ExamStore::put_exam_if_version`]: crate::calendar::ExamStore::put_exam_if_version
//! [`Outbox::webhooks`]: crate::outbox::Outbox::webhooks
//! [`Outbox::put_webhook`]: crate::outbox::Outbox::put_webhook
//! [`Outbox::deliveries`]: crate::outbox::Outbox::deliveries
//! [`Outbox::append_outbox`]: crate::outbox::Outbox::append_outbox
//! [`AuditLog::recent_audit`]: crate::store::AuditLog::recent_audit
//! [`AuditLog::append_audit`]: crate::store::AuditLog::append_audit
//! [`DispatchStore::scan_dispatches`]: crate::store::DispatchStore::scan_dispatches
//! [`DispatchStore::adopt`]: crate::store::DispatchStore::adopt
//! [`DispatchStore::mark_orphaned`]: crate::store::DispatchStore::mark_orphaned
//! [`CapacityRequests::capacity_requests`]: crate::scale::CapacityRequests::capacity_requests
//! [`CapacityRequests::insert_capacity_request`]: crate::scale::CapacityRequests::insert_capacity_request
//! [`ScheduledActions::open_scheduled`]: crate::scheduled::ScheduledActions::open_scheduled
//! [`ScheduledActions::put_scheduled`]: crate::scheduled::ScheduledActions::put_scheduled
//! [`DisruptionLedger::ledger_exams`]: crate::ledger::DisruptionLedger::ledger_exams
//! [`DisruptionLedger::exam_disruptions`]: crate::ledger::DisruptionLedger::exam_disruptions
//! [`DisruptionLedger::append_disruptions`]: crate::ledger::DisruptionLedger::append_disruptions
//! [`Rehearsals::rehearsals`]: crate::rehearsal::Rehearsals::rehearsals
//! [`Rehearsals::put_rehearsal`]: crate::rehearsal::Rehearsals::put_rehearsal

mod contents;
mod export;
mod import;
mod validate;

pub use contents::StoreContents;
pub use export::export;
pub use import::{Copied, ImportError, ImportMode, ImportReport, holds_anything, import};
