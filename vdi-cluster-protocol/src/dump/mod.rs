//! A store's dump: the JSON that `vdi-cluster store export` writes and
//! `vdi-cluster store import` reads, to move a deployment between stores
//! (memory, Redis, PostgreSQL) or to keep a backup that every backend
//! reads.
//!
//! ```json
//! {"formatVersion": 1, "exportedAt": 1765000000000,
//!  "workers": [{"record": {…}, "unrecorded": 0}],
//!  "workerCredentials": [{"worker": "w-1", "credential": {…}}],
//!  "joinTokens": [], "exams": [], "webhooks": [], "outbox": [],
//!  "audit": [], "dispatches": []}
//! ```
//!
//! This module owns the envelope: the [`FORMAT_VERSION`], the parts'
//! names, and how a dump is read ([`StoreDump::parse`]: the version first,
//! then every field, errors naming it). Each item inside a part is written
//! as the backends store it (the serde form of core's records), which is
//! why a change of a stored record's shape that an older reader cannot
//! take bumps the format version. What the parts hold and how they are
//! copied: `vdi_cluster_core::transfer`.

use serde::{Deserialize, Serialize};
use vdi_cluster_core::credential::WorkerCredential;
use vdi_cluster_core::dispatch::Dispatch;
use vdi_cluster_core::exam::Exam;
use vdi_cluster_core::outbox::{OutboxEntry, WebhookEndpoint};
use vdi_cluster_core::store::{AuditEntry, JoinToken};
use vdi_cluster_core::transfer::StoreContents;
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{Timestamp, ValidationError, WorkerId};

use crate::decode::parse_json;

/// The dump format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A whole store, as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoreDump {
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// When it was exported (milliseconds since the epoch).
    pub exported_at: Timestamp,
    /// Workers' records, by code.
    #[serde(default)]
    pub workers: Vec<DumpedWorker>,
    /// Workers' own credentials (hashes only), by code.
    #[serde(default)]
    pub worker_credentials: Vec<DumpedCredential>,
    /// Join tokens (hashes only), by id.
    #[serde(default)]
    pub join_tokens: Vec<JoinToken>,
    /// The exam calendar, by id.
    #[serde(default)]
    pub exams: Vec<Exam>,
    /// Webhook endpoints with their signing secrets, by id.
    #[serde(default)]
    pub webhooks: Vec<WebhookEndpoint>,
    /// Outbox entries not yet delivered, by id.
    #[serde(default)]
    pub outbox: Vec<OutboxEntry>,
    /// The audit trail, oldest first.
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
    /// Live dispatches (active or orphaned), by session.
    #[serde(default)]
    pub dispatches: Vec<Dispatch>,
}

/// A worker's record with the count stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DumpedWorker {
    /// The record, as the backends store it.
    pub record: WorkerRecord,
    /// Sessions the worker runs that no dispatch accounts for
    /// (`WorkerRecord::unrecorded`, stored beside the record).
    #[serde(default)]
    pub unrecorded: u32,
}

/// A worker's own credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DumpedCredential {
    /// The worker's code.
    pub worker: WorkerId,
    /// The credential: its state and its secrets' hashes.
    pub credential: WorkerCredential,
}

impl StoreDump {
    /// The dump of `contents`, exported at `now`.
    pub fn new(contents: StoreContents, now: Timestamp) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            exported_at: now,
            workers: contents
                .workers
                .into_iter()
                .map(|mut record| DumpedWorker {
                    // Stored beside the record, not in it.
                    unrecorded: std::mem::take(&mut record.unrecorded),
                    record,
                })
                .collect(),
            worker_credentials: contents
                .worker_credentials
                .into_iter()
                .map(|(worker, credential)| DumpedCredential { worker, credential })
                .collect(),
            join_tokens: contents.join_tokens,
            exams: contents.exams,
            webhooks: contents.webhooks,
            outbox: contents.outbox,
            audit: contents.audit,
            dispatches: contents.dispatches,
        }
    }

    /// What the dump holds, for `vdi_cluster_core::transfer::import`
    /// (which validates it as a whole).
    pub fn into_contents(self) -> StoreContents {
        StoreContents {
            workers: self
                .workers
                .into_iter()
                .map(|w| {
                    let mut record = w.record;
                    record.unrecorded = w.unrecorded;
                    record
                })
                .collect(),
            worker_credentials: self
                .worker_credentials
                .into_iter()
                .map(|c| (c.worker, c.credential))
                .collect(),
            join_tokens: self.join_tokens,
            exams: self.exams,
            webhooks: self.webhooks,
            outbox: self.outbox,
            audit: self.audit,
            dispatches: self.dispatches,
        }
    }

    /// Reads a dump: a JSON object whose `formatVersion` this build reads
    /// (checked first, so a newer dump is refused for its version rather
    /// than for a field it added), then every field. Errors name the field
    /// (`workers[2].record.capacity`).
    pub fn parse(bytes: &[u8]) -> Result<Self, ValidationError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            format_version: Option<serde_json::Value>,
        }
        let version: Version = serde_json::from_slice(bytes)
            .map_err(|e| ValidationError::new("body", format!("malformed JSON: {e}")))?;
        match version.format_version {
            None => Err(ValidationError::new(
                "formatVersion",
                "missing: this is not a vdi-cluster store dump",
            )),
            Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => parse_json(bytes),
            Some(v) => Err(ValidationError::new(
                "formatVersion",
                format!("{v} is not a format this build reads (it reads {FORMAT_VERSION})"),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
