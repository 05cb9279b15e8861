//! [`Registry`] on the `vdi.workers` table.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use vdi_cluster_core::store::{CasOutcome, DeleteOutcome, Registry};
use vdi_cluster_core::{Result, WorkerId, WorkerRecord, worker::WorkerSnapshot};

use crate::error::PgError;
use crate::{PgStore, sql, to_u32, to_u64};

fn snapshot(row: &PgRow) -> Result<WorkerSnapshot, PgError> {
    let Json(mut record): Json<WorkerRecord> = row.try_get("record")?;
    record.unrecorded = to_u32("unrecorded count", row.try_get("unrecorded")?)?;
    Ok(WorkerSnapshot {
        record,
        version: to_u64("worker version", row.try_get("version")?)?,
        dispatched: to_u32(
            "dispatched count",
            i64::from(row.try_get::<i32, _>("dispatched")?),
        )?,
    })
}

/// A version to compare with, as PostgreSQL's bigint.
pub(crate) fn expected_version(expected: Option<u64>) -> Result<Option<i64>> {
    expected
        .map(|v| i64::try_from(v).map_err(|e| vdi_cluster_core::Error::invalid("version", e)))
        .transpose()
}

/// Compare-and-set of a worker record on `executor` (the pool, or a
/// transaction that writes more): the new version, or `None` on a
/// conflict.
pub(crate) async fn write_worker<'c, E>(
    executor: E,
    record: &WorkerRecord,
    expected: Option<i64>,
) -> Result<Option<i64>, PgError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let max_sessions = i32::try_from(record.max_sessions()).unwrap_or(i32::MAX);
    let unrecorded = i64::from(record.unrecorded);
    let reported_active = i64::from(record.reported_active);
    Ok(match expected {
        None => {
            sqlx::query_scalar(sql::INSERT_WORKER)
                .bind(record.id.as_str())
                .bind(Json(record))
                .bind(max_sessions)
                .bind(unrecorded)
                .bind(record.accepting())
                .bind(reported_active)
                .fetch_optional(executor)
                .await?
        }
        Some(version) => {
            sqlx::query_scalar(sql::UPDATE_WORKER)
                .bind(record.id.as_str())
                .bind(Json(record))
                .bind(max_sessions)
                .bind(unrecorded)
                .bind(record.accepting())
                .bind(version)
                .bind(reported_active)
                .fetch_optional(executor)
                .await?
        }
    })
}

/// A dispatched count as PostgreSQL's integer; `None` when no stored count
/// can be that large (the compare-and-set conflicts).
pub(crate) fn dispatched_count(dispatched: u32) -> Option<i32> {
    i32::try_from(dispatched).ok()
}

/// Compare-and-set of a worker record on its version and its dispatched
/// count, on `executor`: the new version, or `None` on a conflict.
pub(crate) async fn write_worker_if_dispatched<'c, E>(
    executor: E,
    record: &WorkerRecord,
    expected: i64,
    dispatched: i32,
) -> Result<Option<i64>, PgError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    Ok(sqlx::query_scalar(sql::UPDATE_WORKER_IF_DISPATCHED)
        .bind(record.id.as_str())
        .bind(Json(record))
        .bind(i32::try_from(record.max_sessions()).unwrap_or(i32::MAX))
        .bind(i64::from(record.unrecorded))
        .bind(record.accepting())
        .bind(expected)
        .bind(dispatched)
        .bind(i64::from(record.reported_active))
        .fetch_optional(executor)
        .await?)
}

/// `vdi.delete_worker` on `executor`.
pub(crate) async fn delete_worker<'c, E>(
    executor: E,
    id: &WorkerId,
    expected: i64,
) -> Result<DeleteOutcome, PgError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let row = sqlx::query(sql::DELETE_WORKER)
        .bind(id.as_str())
        .bind(expected)
        .fetch_one(executor)
        .await?;
    let outcome: String = row.try_get("outcome")?;
    match outcome.as_str() {
        "deleted" => Ok(DeleteOutcome::Deleted),
        "conflict" => Ok(DeleteOutcome::Conflict),
        "has_dispatches" => Ok(DeleteOutcome::HasDispatches(to_u32(
            "dispatch count",
            row.try_get("remaining")?,
        )?)),
        _ => Err(PgError::UnknownOutcome {
            function: "vdi.delete_worker",
            outcome,
        }),
    }
}

impl PgStore {
    /// The outcome of a compare-and-set that answered `written`.
    pub(crate) async fn cas_outcome(
        &self,
        record: &WorkerRecord,
        written: Option<i64>,
    ) -> Result<CasOutcome, PgError> {
        Ok(match written {
            Some(version) => CasOutcome::Written {
                version: to_u64("worker version", version)?,
            },
            // Read in a statement of its own: the write's snapshot may
            // predate the write that made it conflict.
            None => CasOutcome::Conflict {
                current: self.current_version(&record.id).await?,
            },
        })
    }

    pub(crate) async fn current_version(&self, id: &WorkerId) -> Result<Option<u64>, PgError> {
        let version: Option<i64> = sqlx::query_scalar(sql::WORKER_VERSION)
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await?;
        version.map(|v| to_u64("worker version", v)).transpose()
    }
}

#[async_trait]
impl Registry for PgStore {
    fn primary(&self) -> Option<String> {
        PgStore::primary(self)
    }

    async fn ping(&self) -> Result<()> {
        self.call(async {
            sqlx::query(sql::PING).execute(self.pool()).await?;
            Ok(())
        })
        .await
    }

    async fn worker(&self, id: &WorkerId) -> Result<Option<WorkerSnapshot>> {
        self.call(async {
            let row = sqlx::query(sql::WORKER)
                .bind(id.as_str())
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(snapshot).transpose()
        })
        .await
    }

    async fn workers(&self) -> Result<Vec<WorkerSnapshot>> {
        self.call(async {
            let rows = sqlx::query(sql::WORKERS).fetch_all(self.pool()).await?;
            rows.iter().map(snapshot).collect()
        })
        .await
    }

    async fn put_worker(&self, record: &WorkerRecord, expected: Option<u64>) -> Result<CasOutcome> {
        let expected = expected_version(expected)?;
        self.call(async {
            let written = write_worker(self.pool(), record, expected).await?;
            self.cas_outcome(record, written).await
        })
        .await
    }

    async fn put_worker_if_dispatched(
        &self,
        record: &WorkerRecord,
        expected: u64,
        dispatched: u32,
    ) -> Result<CasOutcome> {
        let expected =
            i64::try_from(expected).map_err(|e| vdi_cluster_core::Error::invalid("version", e))?;
        let Some(dispatched) = dispatched_count(dispatched) else {
            return Ok(CasOutcome::Conflict {
                current: self.call(self.current_version(&record.id)).await?,
            });
        };
        self.call(async {
            let written =
                write_worker_if_dispatched(self.pool(), record, expected, dispatched).await?;
            self.cas_outcome(record, written).await
        })
        .await
    }

    async fn delete_worker(&self, id: &WorkerId, expected: u64) -> Result<DeleteOutcome> {
        let Ok(expected) = i64::try_from(expected) else {
            // No stored version is that large.
            return Ok(DeleteOutcome::Conflict);
        };
        self.call(delete_worker(self.pool(), id, expected)).await
    }
}
