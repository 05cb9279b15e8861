//! [`CapacityRequests`] on `vdi.capacity_requests`: insert-if-absent and
//! compare-and-set on the version, each one statement in the transaction
//! that appends its outbox entries. Which request to store and which step
//! to take is decided in core, never in SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::types::Json;
use vdi_cluster_core::Result;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::scale::{CapacityRequest, CapacityRequests, StoredCapacityRequest};

use crate::outbox::finish;
use crate::{PgStore, sql, to_u64};

impl PgStore {
    /// Runs `statement` (a row back when it wrote) with the request's id,
    /// then `version` when given, then the request, and its `entries` in
    /// the same transaction.
    async fn capacity_write(
        &self,
        statement: &'static str,
        request: &CapacityRequest,
        version: Option<i64>,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        self.call(async {
            let mut tx = self.pool().begin().await?;
            let mut query = sqlx::query(statement).bind(request.id.as_str());
            if let Some(v) = version {
                query = query.bind(v);
            }
            let wrote = query
                .bind(Json(request))
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            finish(tx, wrote, entries).await?;
            Ok(wrote)
        })
        .await
    }
}

#[async_trait]
impl CapacityRequests for PgStore {
    async fn capacity_requests(&self) -> Result<Vec<StoredCapacityRequest>> {
        self.call(async {
            let rows = sqlx::query(sql::CAPACITY_REQUESTS)
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|row| {
                    let Json(request): Json<CapacityRequest> = row.try_get("request")?;
                    Ok(StoredCapacityRequest {
                        request,
                        version: to_u64("capacity request version", row.try_get("version")?)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn insert_capacity_request(
        &self,
        request: &CapacityRequest,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        self.capacity_write(sql::INSERT_CAPACITY_REQUEST, request, None, entries)
            .await
    }

    async fn update_capacity_request(
        &self,
        request: &CapacityRequest,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let Ok(expected) = i64::try_from(expected) else {
            // No version this backend wrote is that large.
            return Ok(false);
        };
        self.capacity_write(
            sql::UPDATE_CAPACITY_REQUEST,
            request,
            Some(expected),
            entries,
        )
        .await
    }
}
