//! [`Outbox`] on `vdi.webhooks` and `vdi.outbox` (migration
//! `20261202000200_outbox.sql`): entries are appended by
//! `vdi.outbox_append` in the statement or transaction that writes their
//! cause; leases skip rows another deliverer is leasing.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use vdi_cluster_core::ledger::Disruption;
use vdi_cluster_core::outbox::{
    Attempt, Delivery, DeliveryState, Failing, LeasedDelivery, LostDispatch, LostRelease, Next,
    Outbox, OutboxEntry, WebhookEndpoint, failed_attempts,
};
use vdi_cluster_core::pacing::PermitReturn;
use vdi_cluster_core::store::{CasOutcome, DeleteOutcome, Lease};
use vdi_cluster_core::worker::WorkerRecord;
use vdi_cluster_core::{Dispatch, DispatchId, SessionKey, WorkerId};
use vdi_cluster_core::{Page, Paged, Result, Timestamp};

use crate::dispatch::ConfirmArgs;
use crate::error::PgError;
use crate::registry::{
    delete_worker, dispatched_count, expected_version, write_worker, write_worker_if_dispatched,
};
use crate::{PgStore, millis, page_bounds, page_total, row_limit, sql, to_u64};

/// One entry as `vdi.outbox_append` reads it.
#[derive(Serialize)]
pub(crate) struct AppendRow<'a> {
    id: &'a str,
    endpoint: &'a str,
    dedup: &'a str,
    due: u64,
    entry: &'a OutboxEntry,
}

/// `entries` as `vdi.outbox_append` reads them.
pub(crate) fn append_rows(entries: &[OutboxEntry]) -> Vec<AppendRow<'_>> {
    entries
        .iter()
        .map(|e| AppendRow {
            id: &e.id,
            endpoint: &e.endpoint,
            dedup: &e.dedup,
            due: e.event.at.as_millis(),
            entry: e,
        })
        .collect()
}

pub(crate) fn rows(entries: &[OutboxEntry]) -> Json<Vec<AppendRow<'_>>> {
    Json(append_rows(entries))
}

/// Ends the transaction of a cause: with its `entries` appended and
/// committed when it `wrote`, rolled back otherwise.
pub(crate) async fn finish(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    wrote: bool,
    entries: &[OutboxEntry],
) -> Result<(), PgError> {
    if !wrote {
        tx.rollback().await?;
        return Ok(());
    }
    sqlx::query(sql::OUTBOX_APPEND)
        .bind(rows(entries))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

fn delivery(row: &PgRow) -> Result<Delivery, PgError> {
    let Json(entry): Json<OutboxEntry> = row.try_get("entry")?;
    let Json(attempts): Json<Vec<Attempt>> = row.try_get("attempts")?;
    let state: String = row.try_get("state")?;
    Ok(Delivery {
        entry,
        state: DeliveryState::parse(&state).ok_or_else(|| PgError::UnknownOutcome {
            function: "vdi.outbox state",
            outcome: state.clone(),
        })?,
        due_at: Timestamp(to_u64("due_at", row.try_get("due_at")?)?),
        attempts,
    })
}

#[async_trait]
impl Outbox for PgStore {
    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<bool> {
        let created = millis("createdAt", endpoint.created_at)?;
        self.call(async {
            let row = sqlx::query(sql::PUT_WEBHOOK)
                .bind(&endpoint.id)
                .bind(Json(endpoint))
                .bind(created)
                .fetch_optional(self.pool())
                .await?;
            Ok(row.is_some())
        })
        .await
    }

    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        self.call(async {
            let rows = sqlx::query(sql::WEBHOOKS).fetch_all(self.pool()).await?;
            rows.iter()
                .map(|r| {
                    let Json(e): Json<WebhookEndpoint> = r.try_get("endpoint")?;
                    Ok(e)
                })
                .collect()
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool> {
        self.call(async {
            let row = sqlx::query(sql::DELETE_WEBHOOK)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            Ok(row.is_some())
        })
        .await
    }

    async fn append_outbox(&self, entries: &[OutboxEntry], fence: Option<&Lease>) -> Result<u32> {
        let written: i32 = self
            .fenced(
                fence,
                |(lease, holder, token)| {
                    sqlx::query(sql::OUTBOX_ENQUEUE)
                        .bind(rows(entries))
                        .bind(lease)
                        .bind(holder)
                        .bind(token)
                },
                |row| row.try_get("written"),
            )
            .await?;
        Ok(u32::try_from(written).unwrap_or(0))
    }

    async fn put_worker_with_outbox(
        &self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<CasOutcome> {
        let expected = expected_version(expected)?;
        // The dispatched count to check, if any: a record not yet stored
        // has none dispatched, and no stored count exceeds i32.
        let checked = match (expected, dispatched.map(dispatched_count)) {
            (_, None) | (None, Some(Some(0))) => None,
            (Some(version), Some(Some(n))) => Some((version, n)),
            _ => {
                return Ok(CasOutcome::Conflict {
                    current: self.call(self.current_version(&record.id)).await?,
                });
            }
        };
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let written = match checked {
                Some((version, n)) => {
                    write_worker_if_dispatched(&mut *tx, record, version, n).await?
                }
                None => write_worker(&mut *tx, record, expected).await?,
            };
            finish(tx, written.is_some(), entries).await?;
            self.cas_outcome(record, written).await
        })
        .await
    }

    async fn put_worker_releasing_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> Result<LostRelease> {
        self.release_lost(record, expected, entries, lost).await
    }

    async fn delete_worker_with_outbox(
        &self,
        id: &WorkerId,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<DeleteOutcome> {
        let Ok(expected) = i64::try_from(expected) else {
            // No stored version is that large.
            return Ok(DeleteOutcome::Conflict);
        };
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let outcome = delete_worker(&mut *tx, id, expected).await?;
            finish(tx, outcome == DeleteOutcome::Deleted, entries).await?;
            Ok(outcome)
        })
        .await
    }

    async fn confirm_with_outbox(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) -> Result<Option<Dispatch>> {
        let args = ConfirmArgs::new(key, id, session, now, sticky_ttl, permit)?;
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let confirmed = args.run(&mut *tx).await?;
            if confirmed.is_none() {
                // Nothing confirmed: only the permit given back is written.
                tx.commit().await?;
                return Ok(None);
            }
            if !disruptions.is_empty() {
                crate::ledger::append(&mut *tx, disruptions).await?;
            }
            finish(tx, true, entries).await?;
            Ok(confirmed)
        })
        .await
    }

    async fn lease_deliveries(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<LeasedDelivery>> {
        let (now, until) = (millis("now", now)?, millis("until", until)?);
        self.call(async {
            let rows = sqlx::query(sql::OUTBOX_LEASE)
                .bind(now)
                .bind(until)
                .bind(row_limit(limit))
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|r| {
                    let Json(entry): Json<OutboxEntry> = r.try_get("entry")?;
                    let Json(attempts): Json<Vec<Attempt>> = r.try_get("attempts")?;
                    Ok(LeasedDelivery {
                        entry,
                        token: to_u64("lease token", r.try_get("lease_token")?)?,
                        attempts: failed_attempts(&attempts),
                    })
                })
                .collect()
        })
        .await
    }

    async fn finish_delivery(
        &self,
        delivery: &LeasedDelivery,
        attempt: &Attempt,
        next: Next,
        failing: Option<Failing<'_>>,
    ) -> Result<Option<u32>> {
        let Ok(token) = i64::try_from(delivery.token) else {
            // No token this backend handed out is that large.
            return Ok(None);
        };
        let (state, due) = match next {
            Next::Delivered => (DeliveryState::Delivered, 0),
            Next::GiveUp => (DeliveryState::Failed, 0),
            Next::RetryAt(at) => (DeliveryState::Pending, millis("due", at)?),
        };
        let threshold = failing.map(|f| i32::try_from(f.threshold).unwrap_or(i32::MAX));
        let entries = failing.map_or(&[][..], |f| f.entries);
        self.call(async {
            let failures: Option<i32> = sqlx::query_scalar(sql::OUTBOX_FINISH)
                .bind(&delivery.entry.id)
                .bind(token)
                .bind(Json(attempt))
                .bind(state.name())
                .bind(due)
                .bind(&delivery.entry.endpoint)
                .bind(attempt.succeeded())
                .bind(threshold)
                .bind(rows(entries))
                .fetch_one(self.pool())
                .await?;
            Ok(failures.map(|n| u32::try_from(n).unwrap_or(0)))
        })
        .await
    }

    async fn delivery_page(&self, endpoint: &str, page: Page) -> Result<Paged<Delivery>> {
        let (offset, limit) = page_bounds(page);
        self.call(async {
            let rows = sqlx::query(sql::DELIVERY_PAGE)
                .bind(endpoint)
                .bind(offset)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                if row.try_get::<Option<String>, _>("state")?.is_some() {
                    items.push(delivery(row)?);
                }
            }
            Ok(Paged {
                items,
                total: page_total(&rows)?,
            })
        })
        .await
    }

    async fn retry_delivery(&self, endpoint: &str, id: &str, now: Timestamp) -> Result<bool> {
        let now = millis("now", now)?;
        self.call(async {
            let row = sqlx::query(sql::RETRY_DELIVERY)
                .bind(endpoint)
                .bind(id)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
            Ok(row.is_some())
        })
        .await
    }

    async fn purge_deliveries(&self, before: Timestamp, limit: usize) -> Result<u32> {
        let before = millis("before", before)?;
        self.call(async {
            let purged: i32 = sqlx::query_scalar(sql::PURGE_DELIVERIES)
                .bind(before)
                .bind(row_limit(limit))
                .fetch_one(self.pool())
                .await?;
            Ok(u32::try_from(purged).unwrap_or(0))
        })
        .await
    }
}
