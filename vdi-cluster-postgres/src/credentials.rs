//! [`Credentials`] on `vdi.join_tokens` and `vdi.worker_credentials`: a
//! join token is redeemed by one conditional `UPDATE`, so two workers racing
//! for its last use cannot both get it.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use vdi_cluster_core::store::{Credentials, JoinToken};
use vdi_cluster_core::{Error, Result, Timestamp, WorkerId};

use crate::error::PgError;
use crate::{PgStore, millis, sql, to_u64};

fn uses(what: &'static str, value: i32) -> Result<u32, PgError> {
    u32::try_from(value).map_err(|_| PgError::OutOfRange {
        what,
        value: i64::from(value),
    })
}

fn join_token(row: &PgRow) -> Result<JoinToken, PgError> {
    Ok(JoinToken {
        id: row.try_get("id")?,
        token_hash: row.try_get("token_hash")?,
        created_by: row.try_get("created_by")?,
        created_at: Timestamp(to_u64("join token creation", row.try_get("created_at")?)?),
        expires_at: Timestamp(to_u64("join token expiry", row.try_get("expires_at")?)?),
        max_uses: uses("join token max uses", row.try_get("max_uses")?)?,
        uses: uses("join token uses", row.try_get("uses")?)?,
    })
}

#[async_trait]
impl Credentials for PgStore {
    async fn put_join_token(&self, token: &JoinToken) -> Result<()> {
        let created_at = millis("createdAt", token.created_at)?;
        let expires_at = millis("expiresAt", token.expires_at)?;
        let max_uses = i32::try_from(token.max_uses).map_err(|e| Error::invalid("maxUses", e))?;
        let used = i32::try_from(token.uses).map_err(|e| Error::invalid("uses", e))?;
        let inserted = self
            .call(async {
                let done = sqlx::query(sql::PUT_JOIN_TOKEN)
                    .bind(&token.id)
                    .bind(&token.token_hash)
                    .bind(&token.created_by)
                    .bind(created_at)
                    .bind(expires_at)
                    .bind(max_uses)
                    .bind(used)
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected())
            })
            .await?;
        if inserted == 0 {
            return Err(Error::Conflict {
                what: format!("join token {}", token.id),
            });
        }
        Ok(())
    }

    async fn redeem_join_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<JoinToken>> {
        let now = millis("now", now)?;
        self.call(async {
            let row = sqlx::query(sql::REDEEM_JOIN_TOKEN)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(join_token).transpose()
        })
        .await
    }

    async fn join_tokens(&self) -> Result<Vec<JoinToken>> {
        self.call(async {
            let rows = sqlx::query(sql::JOIN_TOKENS).fetch_all(self.pool()).await?;
            rows.iter().map(join_token).collect()
        })
        .await
    }

    async fn revoke_join_token(&self, id: &str) -> Result<bool> {
        self.call(async {
            let done = sqlx::query(sql::REVOKE_JOIN_TOKEN)
                .bind(id)
                .execute(self.pool())
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn put_worker_credential(&self, worker: &WorkerId, token_hash: &str) -> Result<()> {
        self.call(async {
            sqlx::query(sql::PUT_WORKER_CREDENTIAL)
                .bind(worker.as_str())
                .bind(token_hash)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<String>> {
        self.call(async {
            let row = sqlx::query(sql::WORKER_CREDENTIAL)
                .bind(worker.as_str())
                .fetch_optional(self.pool())
                .await?;
            Ok(row.map(|r| r.try_get("token_hash")).transpose()?)
        })
        .await
    }
}
