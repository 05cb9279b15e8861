//! [`LeaderLease`] on `vdi.leases`, with fencing tokens from the
//! `vdi.lease_tokens` sequence and expiry on the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::Result;
use vdi_cluster_core::store::{LeaderLease, Lease};

use crate::{PgStore, sql, to_u64};

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
}
