//! A store's dump: the JSON that `vdi-cluster store export` writes and
//! `vdi-cluster store import` reads, to move a deployment between stores
//! (memory, Redis, PostgreSQL) or to keep a backup that every backend
//! reads.
//!
//! ```json
//! {"formatVersion": 3, "exportedAt": 1765000000000,
//!  "workers": [{"record": {…}, "unrecorded": 0}],
//!  "workerCredentials": [{"worker": "w-1", "credential": {…}}],
//!  "joinTokens": [], "exams": [], "webhooks": [], "outbox": [],
//!  "audit": [], "dispatches": [], "capacityRequests": [],
//!  "scheduledDrains": [], "disruptions": [], "rehearsals": []}
//! ```
//!
//! Format 2 added `capacityRequests` and `scheduledDrains`, format 3 the
//! disruption ledger's entries (`disruptions`), format 4 the exams'
//! rehearsals (`rehearsals`); a dump of an older format (which has none of
//! the later parts) is still read, as a dump of format 4 whose later parts
//! are empty.
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
use vdi_cluster_core::ledger::Disruption;
use vdi_cluster_core::outbox::{OutboxEntry, WebhookEndpoint};
use vdi_cluster_core::rehearsal::Rehearsal;
use vdi_cluster_core::scale::CapacityRequest;
use vdi_cluster_core::scheduled::ScheduledAction;
use vdi_cluster_core::store::{AuditEntry, JoinToken};
use vdi_cluster_core::transfer::StoreContents;
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{Timestamp, ValidationError, WorkerId};

use crate::decode::parse_json;

/// The dump format this build writes.
pub const FORMAT_VERSION: u32 = 4;

/// The dump formats this build reads: format 1 lacks the parts format 2
/// added (`capacityRequests`, `scheduledDrains`), and formats 1 and 2 the
/// part format 3 added (`disruptions`), and formats 1 to 3 the part
/// format 4 added (`rehearsals`).
pub const READS_FORMATS: [u32; 4] = [1, 2, 3, FORMAT_VERSION];

/// The parts each format added after the first, by format.
const ADDED_IN: [(&str, u32); 4] = [
    ("capacityRequests", 2),
    ("scheduledDrains", 2),
    ("disruptions", 3),
    ("rehearsals", 4),
];

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
    /// The scale hook's capacity requests, in every state, by id (from
    /// format 2).
    #[serde(default)]
    pub capacity_requests: Vec<CapacityRequest>,
    /// Scheduled drains still open (pending or claimed), by id (from
    /// format 2).
    #[serde(default)]
    pub scheduled_drains: Vec<ScheduledAction>,
    /// The disruption ledger's entries, by session and id (from format 3).
    #[serde(default)]
    pub disruptions: Vec<Disruption>,
    /// Exams' rehearsals (each worker's last check), by exam (from
    /// format 4).
    #[serde(default)]
    pub rehearsals: Vec<Rehearsal>,
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
            capacity_requests: contents.capacity_requests,
            scheduled_drains: contents.scheduled,
            disruptions: contents.disruptions,
            rehearsals: contents.rehearsals,
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
            capacity_requests: self.capacity_requests,
            scheduled: self.scheduled_drains,
            disruptions: self.disruptions,
            rehearsals: self.rehearsals,
        }
    }

    /// Reads a dump: a JSON object whose `formatVersion` this build reads
    /// ([`READS_FORMATS`]; checked first, so a newer dump is refused for
    /// its version rather than for a field it added), then every field; a
    /// part newer than the dump's format is refused. Errors name the field
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
            Some(v) if older_format(&v).is_some() => {
                let dump: Self = parse_json(bytes)?;
                dump.within_format(dump.format_version)?;
                Ok(dump)
            }
            Some(v) => Err(ValidationError::new(
                "formatVersion",
                format!(
                    "{v} is not a format this build reads (it reads {})",
                    READS_FORMATS.map(|f| f.to_string()).join(" and ")
                ),
            )),
        }
    }

    /// A dump that says it is of an older `format` holds none of the parts
    /// later formats added.
    fn within_format(&self, format: u32) -> Result<(), ValidationError> {
        let empty = |part: &str| match part {
            "capacityRequests" => self.capacity_requests.is_empty(),
            "scheduledDrains" => self.scheduled_drains.is_empty(),
            "disruptions" => self.disruptions.is_empty(),
            _ => self.rehearsals.is_empty(),
        };
        match ADDED_IN
            .into_iter()
            .find(|(part, added)| *added > format && !empty(part))
        {
            Some((part, added)) => Err(ValidationError::new(
                part,
                format!("appears from format {added}: this dump says it is of format {format}"),
            )),
            None => Ok(()),
        }
    }
}

/// The older format `version` names, if this build reads it.
fn older_format(version: &serde_json::Value) -> Option<u32> {
    let v = u32::try_from(version.as_u64()?).ok()?;
    (v != FORMAT_VERSION && READS_FORMATS.contains(&v)).then_some(v)
}

#[cfg(test)]
mod tests;
