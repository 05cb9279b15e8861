//! [`import`]: a store's contents written into another store.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use super::StoreContents;
use crate::calendar::CalendarWrite;
use crate::dispatch::DispatchState;
use crate::error::{Error, Result};
use crate::store::{Adoption, CasOutcome, Store};
use crate::validation::ValidationError;

/// Whether an import may add to a store that already holds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Only into a store that holds nothing ([`holds_anything`]).
    IntoEmpty,
    /// Into any store: what the store already holds under an item's key
    /// (a worker's code, a token's id, an exam's id, a session, …) is kept,
    /// and the dump's item is skipped. Running an interrupted import again
    /// in this mode completes it.
    Merge,
}

/// How many items of one part were written, and how many skipped because
/// the store already held their key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    /// Written.
    pub written: u64,
    /// Already there (a merge, or a repeated import).
    pub skipped: u64,
}

impl Copied {
    fn count(&mut self, written: bool) {
        if written {
            self.written += 1;
        } else {
            self.skipped += 1;
        }
    }
}

impl fmt::Display for Copied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} written, {} already there",
            self.written, self.skipped
        )
    }
}

/// What [`import`] did, part by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Workers' records.
    pub workers: Copied,
    /// Workers' own credentials.
    pub worker_credentials: Copied,
    /// Join tokens.
    pub join_tokens: Copied,
    /// Booked exams.
    pub exams: Copied,
    /// Webhook endpoints.
    pub webhooks: Copied,
    /// Undelivered outbox entries.
    pub outbox: Copied,
    /// Audit entries.
    pub audit: Copied,
    /// Live dispatches.
    pub dispatches: Copied,
    /// The scale hook's capacity requests.
    pub capacity_requests: Copied,
    /// Open scheduled drains.
    pub scheduled: Copied,
    /// The disruption ledger's entries.
    pub disruptions: Copied,
    /// Exams' rehearsals.
    pub rehearsals: Copied,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            ("workers", self.workers),
            ("worker credentials", self.worker_credentials),
            ("join tokens", self.join_tokens),
            ("exams", self.exams),
            ("webhooks", self.webhooks),
            ("outbox entries", self.outbox),
            ("audit entries", self.audit),
            ("dispatches", self.dispatches),
            ("capacity requests", self.capacity_requests),
            ("scheduled drains", self.scheduled),
            ("ledger entries", self.disruptions),
            ("rehearsals", self.rehearsals),
        ];
        for (name, copied) in parts {
            writeln!(f, "{name}: {copied}")?;
        }
        Ok(())
    }
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The contents are not a consistent dump; nothing was written.
    #[error("the dump is not valid: {0}")]
    Invalid(#[from] ValidationError),
    /// [`ImportMode::IntoEmpty`] and the store holds something; nothing
    /// was written.
    #[error("the target store is not empty: it holds {holds}; merge into it explicitly")]
    NotEmpty {
        /// What it holds (`workers`, `exams`, …).
        holds: &'static str,
    },
    /// The store failed; what was written before stays (import again,
    /// merging, to complete it).
    #[error(transparent)]
    Store(#[from] Error),
}

/// The first part of `store`'s contents that is not empty (`workers`,
/// `worker credentials`, `join tokens`, `exams`, `webhooks`, `audit
/// entries`, `dispatches`, `capacity requests`, `scheduled drains`,
/// `ledger entries`, `rehearsals`), or
/// `None` for a store that holds nothing of what an import writes.
pub async fn holds_anything(store: &dyn Store) -> Result<Option<&'static str>> {
    let found = if !store.workers().await?.is_empty() {
        Some("workers")
    } else if !store.worker_credentials().await?.is_empty() {
        Some("worker credentials")
    } else if !store.join_tokens().await?.is_empty() {
        Some("join tokens")
    } else if !store.exam_calendar().await?.exams.is_empty() {
        Some("exams")
    } else if !store.webhooks().await?.is_empty() {
        Some("webhooks")
    } else if !store.recent_audit(1).await?.is_empty() {
        Some("audit entries")
    } else if !store.scan_dispatches(None, 1).await?.dispatches.is_empty() {
        Some("dispatches")
    } else if !store.capacity_requests().await?.is_empty() {
        Some("capacity requests")
    } else if !store.open_scheduled(None, 1).await?.is_empty() {
        Some("scheduled drains")
    } else if !store.ledger_exams().await?.is_empty() {
        Some("ledger entries")
    } else if !store.rehearsals().await?.is_empty() {
        Some("rehearsals")
    } else {
        None
    };
    Ok(found)
}

/// Validates `contents` and writes them into `store` (see the [module's
/// table](super)): workers first, then what refers to them. Each item is
/// written only where the store holds nothing under its key, so nothing
/// the store holds is overwritten. Adopted dispatches make each exam's
/// sticky worker last `sticky_ttl` from their activation.
pub async fn import(
    store: &dyn Store,
    contents: &StoreContents,
    mode: ImportMode,
    sticky_ttl: Duration,
) -> Result<ImportReport, ImportError> {
    contents.validate()?;
    if mode == ImportMode::IntoEmpty
        && let Some(holds) = holds_anything(store).await?
    {
        return Err(ImportError::NotEmpty { holds });
    }
    let mut report = ImportReport::default();
    for record in &contents.workers {
        let outcome = store.put_worker(record, None).await?;
        report
            .workers
            .count(matches!(outcome, CasOutcome::Written { .. }));
    }
    for (worker, credential) in &contents.worker_credentials {
        let outcome = store
            .put_worker_credential(worker, credential, None)
            .await?;
        report
            .worker_credentials
            .count(matches!(outcome, CasOutcome::Written { .. }));
    }
    copy_join_tokens(store, contents, &mut report).await?;
    copy_exams(store, contents, &mut report).await?;
    for endpoint in &contents.webhooks {
        let written = store.put_webhook(endpoint).await?;
        report.webhooks.count(written);
    }
    let new = u64::from(store.append_outbox(&contents.outbox, None).await?);
    let total = contents.outbox.len() as u64;
    report.outbox = Copied {
        written: new,
        skipped: total.saturating_sub(new),
    };
    copy_audit(store, contents, &mut report).await?;
    for dispatch in &contents.dispatches {
        let written = match store.adopt(dispatch, sticky_ttl).await? {
            Adoption::Adopted(_) => true,
            Adoption::Existing(_) | Adoption::UnknownWorker => false,
        };
        if written && dispatch.state == DispatchState::Orphaned {
            store
                .mark_orphaned(&dispatch.key, dispatch.id, None)
                .await?;
        }
        report.dispatches.count(written);
    }
    for request in &contents.capacity_requests {
        let written = store.insert_capacity_request(request, &[]).await?;
        report.capacity_requests.count(written);
    }
    for action in &contents.scheduled {
        let outcome = store.put_scheduled(action, None).await?;
        report
            .scheduled
            .count(matches!(outcome, CasOutcome::Written { .. }));
    }
    let new = u64::from(store.append_disruptions(&contents.disruptions).await?);
    let total = contents.disruptions.len() as u64;
    report.disruptions = Copied {
        written: new,
        skipped: total.saturating_sub(new),
    };
    for rehearsal in &contents.rehearsals {
        let written = store.put_rehearsal(rehearsal, 0, &[]).await?;
        report.rehearsals.count(written);
    }
    Ok(report)
}

async fn copy_join_tokens(
    store: &dyn Store,
    contents: &StoreContents,
    report: &mut ImportReport,
) -> Result<()> {
    let held = store.join_tokens().await?;
    let ids: BTreeSet<&str> = held.iter().map(|t| t.id.as_str()).collect();
    let hashes: BTreeSet<&str> = held.iter().map(|t| t.token_hash.as_str()).collect();
    for token in &contents.join_tokens {
        let fresh = !ids.contains(token.id.as_str()) && !hashes.contains(token.token_hash.as_str());
        if fresh {
            store.put_join_token(token).await?;
        }
        report.join_tokens.count(fresh);
    }
    Ok(())
}

async fn copy_exams(
    store: &dyn Store,
    contents: &StoreContents,
    report: &mut ImportReport,
) -> Result<()> {
    let calendar = store.exam_calendar().await?;
    let mut version = calendar.version;
    for exam in &contents.exams {
        if calendar.get(&exam.id).is_some() {
            report.exams.count(false);
            continue;
        }
        match store.put_exam_if_version(exam, version).await? {
            CalendarWrite::Written { version: now } => version = now,
            CalendarWrite::Conflict { current } => {
                return Err(Error::Conflict {
                    what: format!("the exam calendar (version {current}, expected {version})"),
                });
            }
        }
        report.exams.count(true);
    }
    Ok(())
}

async fn copy_audit(
    store: &dyn Store,
    contents: &StoreContents,
    report: &mut ImportReport,
) -> Result<()> {
    let held = store.recent_audit(u32::MAX as usize).await?;
    for entry in &contents.audit {
        let fresh = !held.contains(entry);
        if fresh {
            store.append_audit(entry).await?;
        }
        report.audit.count(fresh);
    }
    Ok(())
}
