//! [`ScheduledActions`] on `vdi.scheduled_actions`: each compare-and-set
//! is one statement that inserts or updates the row only on the expected
//! version and keeps the `open` column the due ones are found by (whether
//! an action may move is decided in core, never in SQL).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use vdi_cluster_core::Result;
use vdi_cluster_core::scheduled::{ScheduledAction, ScheduledActions, ScheduledSnapshot};
use vdi_cluster_core::store::CasOutcome;
use vdi_cluster_core::time::Timestamp;

use crate::error::PgError;
use crate::registry::expected_version;
use crate::{PgStore, millis, row_limit, sql, to_u64};

fn snapshot(row: &PgRow) -> Result<ScheduledSnapshot, PgError> {
    let Json(action): Json<ScheduledAction> = row.try_get("action")?;
    let version = to_u64("scheduled action version", row.try_get("version")?)?;
    Ok(ScheduledSnapshot { action, version })
}

#[async_trait]
impl ScheduledActions for PgStore {
    async fn put_scheduled(
        &self,
        action: &ScheduledAction,
        expected: Option<u64>,
    ) -> Result<CasOutcome> {
        let expected = expected_version(expected)?;
        let at = millis("at", action.at)?;
        self.call(async {
            let row = sqlx::query(sql::PUT_SCHEDULED)
                .bind(&action.id)
                .bind(expected)
                .bind(Json(action))
                .bind(action.state.is_open())
                .bind(at)
                .fetch_one(self.pool())
                .await?;
            let written: Option<i64> = row.try_get("written")?;
            let current: Option<i64> = row.try_get("current")?;
            Ok(match written {
                Some(v) => CasOutcome::Written {
                    version: to_u64("scheduled action version", v)?,
                },
                None => CasOutcome::Conflict {
                    current: current
                        .map(|v| to_u64("scheduled action version", v))
                        .transpose()?,
                },
            })
        })
        .await
    }

    async fn scheduled(&self, id: &str) -> Result<Option<ScheduledSnapshot>> {
        self.call(async {
            let row = sqlx::query(sql::SCHEDULED)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(snapshot).transpose()
        })
        .await
    }

    async fn open_scheduled(
        &self,
        due_by: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<ScheduledSnapshot>> {
        let due_by = due_by.map(|t| millis("dueBy", t)).transpose()?;
        self.call(async {
            let rows = sqlx::query(sql::OPEN_SCHEDULED)
                .bind(due_by)
                .bind(row_limit(limit))
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(snapshot).collect()
        })
        .await
    }
}
