//! [`LeaderLease`] on `vdi.leases`, with fencing tokens from the
//! `vdi.lease_tokens` sequence and expiry on the database's clock; the
//! checkpoint beside a lease is a column of its row.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};
use vdi_cluster_core::Result;
use vdi_cluster_core::store::{LeaderLease, Lease};

use crate::{PgStore, sql, to_u64};

/// A fencing lease as a statement's parameters: its name, holder and
/// token (all NULL: unfenced).
pub(crate) type FenceArgs<'a> = (Option<&'a str>, Option<&'a str>, Option<i64>);

impl PgStore {
    /// Runs a write fenced by `fence`: `statement` binds the lease's
    /// [`FenceArgs`] where the statement checks them (`vdi.fence_holds`,
    /// in the same statement as the write), and its one row says in
    /// `held` whether the fence held; `read` takes the rest of the row. A
    /// fence that no longer held is [`Error::Fenced`](vdi_cluster_core::Error::Fenced).
    pub(crate) async fn fenced<'q, T>(
        &self,
        fence: Option<&'q Lease>,
        statement: impl FnOnce(FenceArgs<'q>) -> Query<'q, Postgres, PgArguments>,
        read: impl FnOnce(&PgRow) -> Result<T, sqlx::Error> + Send,
    ) -> Result<T>
    where
        T: Send,
    {
        let args = match fence {
            None => (None, None, None),
            Some(lease) => {
                let token = i64::try_from(lease.token).map_err(|_| lease.refusal())?;
                (
                    Some(lease.name.as_str()),
                    Some(lease.holder.as_str()),
                    Some(token),
                )
            }
        };
        let query = statement(args);
        let (held, value) = self
            .call(async {
                let row = query.fetch_one(self.pool()).await?;
                let held: bool = row.try_get("held")?;
                Ok((held, read(&row)?))
            })
            .await?;
        match fence {
            Some(lease) if !held => Err(lease.refusal()),
            _ => Ok(value),
        }
    }
}

/// Longest lease accepted, so that `now() + ttl` stays far inside
/// PostgreSQL's range (a longer TTL is shortened to this).
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[async_trait]
impl LeaderLease for PgStore {
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        let ttl_ms = i64::try_from(ttl.min(MAX_LEASE_TTL).as_millis()).unwrap_or(i64::MAX);
        self.call(async {
            let token: Option<i64> = sqlx::query_scalar(sql::ACQUIRE_LEASE)
                .bind(name)
                .bind(holder)
                .bind(ttl_ms)
                .fetch_optional(self.pool())
                .await?;
            token
                .map(|token| {
                    Ok(Lease {
                        name: name.to_owned(),
                        holder: holder.to_owned(),
                        token: to_u64("lease token", token)?,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        let Ok(token) = i64::try_from(lease.token) else {
            // No token this backend handed out is that large.
            return Ok(false);
        };
        self.call(async {
            let done = sqlx::query(sql::RELEASE_LEASE)
                .bind(&lease.name)
                .bind(&lease.holder)
                .bind(token)
                .execute(self.pool())
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>> {
        self.call(async {
            let text: Option<Option<String>> = sqlx::query_scalar(sql::LEASE_CHECKPOINT)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
            Ok(text.flatten())
        })
        .await
    }

    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &str) -> Result<()> {
        let token = i64::try_from(lease.token).map_err(|_| lease.refusal())?;
        let saved = self
            .call(async {
                let done = sqlx::query(sql::SAVE_LEASE_CHECKPOINT)
                    .bind(&lease.name)
                    .bind(&lease.holder)
                    .bind(token)
                    .bind(checkpoint)
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            })
            .await?;
        if saved { Ok(()) } else { Err(lease.refusal()) }
    }
}
