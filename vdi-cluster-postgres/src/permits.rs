//! [`StartPermits`] on `vdi.start_permits` and `vdi.start_pacing`: each
//! acquire and release is one call of a function that locks the worker's
//! pacing row first (the limit is decided in core and passed in); the
//! view is one statement.

use async_trait::async_trait;
use sqlx::Row;
use vdi_cluster_core::pacing::{HeldPermit, PermitAnswer, StartPermits, StartQueue, StartSample};
use vdi_cluster_core::{Result, Timestamp, WorkerId};

use crate::error::PgError;
use crate::{PgStore, millis, sql, to_u32, to_u64};

#[async_trait]
impl StartPermits for PgStore {
    async fn acquire_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<PermitAnswer> {
        let (now, until) = (millis("now", now)?, millis("until", until)?);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        self.call(async {
            let row = sqlx::query(sql::START_PERMIT_ACQUIRE)
                .bind(worker.as_str())
                .bind(id)
                .bind(limit)
                .bind(now)
                .bind(until)
                .fetch_one(self.pool())
                .await?;
            let in_flight = to_u32("permits held", row.try_get("in_flight")?)?;
            Ok(if row.try_get("granted")? {
                PermitAnswer::Granted { in_flight }
            } else {
                PermitAnswer::Waiting {
                    position: to_u32("queue position", row.try_get("pos")?)?,
                    in_flight,
                }
            })
        })
        .await
    }

    async fn release_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        sample: Option<StartSample>,
        keep: u32,
    ) -> Result<bool> {
        let int = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        self.call(async {
            let row = sqlx::query(sql::START_PERMIT_RELEASE)
                .bind(worker.as_str())
                .bind(id)
                .bind(sample.map(|s| int(s.millis)))
                .bind(sample.map(|s| int(s.in_flight)))
                .bind(int(keep))
                .fetch_one(self.pool())
                .await?;
            Ok(row.try_get("held")?)
        })
        .await
    }

    async fn start_queue(&self, worker: &WorkerId, now: Timestamp) -> Result<StartQueue> {
        let now = millis("now", now)?;
        self.call(async {
            let row = sqlx::query(sql::START_QUEUE)
                .bind(worker.as_str())
                .bind(now)
                .fetch_one(self.pool())
                .await?;
            let ids: Vec<String> = row.try_get("held_ids")?;
            let since: Vec<i64> = row.try_get("held_since")?;
            let held = ids
                .into_iter()
                .zip(since)
                .map(|(id, since)| {
                    Ok(HeldPermit {
                        id,
                        since: Timestamp(to_u64("permit grant time", since)?),
                    })
                })
                .collect::<Result<_, PgError>>()?;
            let millis: Vec<i32> = row.try_get("millis")?;
            let in_flight: Vec<i32> = row.try_get("in_flight")?;
            let samples = millis
                .into_iter()
                .zip(in_flight)
                .map(|(m, n)| {
                    Ok(StartSample {
                        millis: to_u32("start time", i64::from(m))?,
                        in_flight: to_u32("starts in flight", i64::from(n))?,
                    })
                })
                .collect::<Result<_, PgError>>()?;
            Ok(StartQueue {
                held,
                waiting: row.try_get("waiting")?,
                samples,
            })
        })
        .await
    }
}
