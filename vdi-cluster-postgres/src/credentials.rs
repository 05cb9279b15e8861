//! [`Credentials`] on `vdi.join_tokens` and `vdi.worker_credentials`: a
//! join token is redeemed by one conditional `UPDATE`, so two workers racing
//! for its last use cannot both get it; a join (`vdi.claim_worker`) counts
//! the use and writes the credential in one function call; credentials are
//! written by compare-and-set on their version. Operators' page sessions
//! are rows of `vdi.operator_sessions`, read only while live.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use vdi_cluster_core::credential::{CredentialSnapshot, WorkerCredential};
use vdi_cluster_core::operator_session::OperatorSession;
use vdi_cluster_core::store::{CasOutcome, ClaimOutcome, Credentials, JoinClaim, JoinToken};
use vdi_cluster_core::{Error, Result, Timestamp, WorkerId};

use crate::error::PgError;
use crate::{PgStore, millis, sql, to_u64};

fn uses(what: &'static str, value: i32) -> Result<u32, PgError> {
    u32::try_from(value).map_err(|_| PgError::OutOfRange {
        what,
        value: i64::from(value),
    })
}

fn credential_snapshot(row: &PgRow) -> Result<CredentialSnapshot, PgError> {
    let Json(credential): Json<WorkerCredential> = row.try_get("credential")?;
    let version = to_u64("credential version", row.try_get("version")?)?;
    Ok(CredentialSnapshot {
        credential,
        version,
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
        worker: row
            .try_get::<Option<String>, _>("worker_id")?
            .map(|w| WorkerId::parse("worker_id", &w))
            .transpose()
            .map_err(|source| PgError::Corrupt {
                what: "join token worker",
                source,
            })?,
    })
}

impl PgStore {
    async fn credential_version(&self, worker: &WorkerId) -> Result<Option<u64>, PgError> {
        let version: Option<i64> = sqlx::query_scalar(sql::WORKER_CREDENTIAL_VERSION)
            .bind(worker.as_str())
            .fetch_optional(self.pool())
            .await?;
        version.map(|v| to_u64("credential version", v)).transpose()
    }
}

fn expected_version(expected: Option<u64>) -> Result<Option<i64>> {
    expected
        .map(i64::try_from)
        .transpose()
        .map_err(|e| Error::invalid("expected", e))
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
                    .bind(token.worker.as_ref().map(WorkerId::as_str))
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

    async fn claim_worker(&self, claim: &JoinClaim) -> Result<ClaimOutcome> {
        let now = millis("now", claim.now)?;
        let expected = expected_version(claim.expected)?;
        self.call(async {
            let row = sqlx::query(sql::CLAIM_WORKER)
                .bind(&claim.token_hash)
                .bind(now)
                .bind(claim.worker.as_str())
                .bind(claim.bound_only)
                .bind(expected)
                .bind(Json(&claim.credential))
                .fetch_one(self.pool())
                .await?;
            let outcome: String = row.try_get("outcome")?;
            let token = || -> Result<Option<JoinToken>, PgError> {
                let id: Option<String> = row.try_get("id")?;
                id.map(|_| join_token(&row)).transpose()
            };
            let version = || -> Result<Option<u64>, PgError> {
                let v: Option<i64> = row.try_get("version")?;
                v.map(|v| to_u64("credential version", v)).transpose()
            };
            let unknown = || PgError::UnknownOutcome {
                function: "vdi.claim_worker",
                outcome: outcome.clone(),
            };
            Ok(match outcome.as_str() {
                "claimed" => ClaimOutcome::Claimed {
                    token: token()?.ok_or_else(unknown)?,
                    version: version()?.ok_or_else(unknown)?,
                },
                "refused" => ClaimOutcome::TokenRefused { token: token()? },
                "conflict" => ClaimOutcome::Conflict {
                    current: version()?,
                },
                _ => return Err(unknown()),
            })
        })
        .await
    }

    async fn put_worker_credential(
        &self,
        worker: &WorkerId,
        credential: &WorkerCredential,
        expected: Option<u64>,
    ) -> Result<CasOutcome> {
        let expected = expected_version(expected)?;
        self.call(async {
            let written: Option<i64> = match expected {
                None => {
                    sqlx::query_scalar(sql::INSERT_WORKER_CREDENTIAL)
                        .bind(worker.as_str())
                        .bind(Json(credential))
                        .fetch_optional(self.pool())
                        .await?
                }
                Some(version) => {
                    sqlx::query_scalar(sql::UPDATE_WORKER_CREDENTIAL)
                        .bind(worker.as_str())
                        .bind(Json(credential))
                        .bind(version)
                        .fetch_optional(self.pool())
                        .await?
                }
            };
            Ok(match written {
                Some(version) => CasOutcome::Written {
                    version: to_u64("credential version", version)?,
                },
                // Read in a statement of its own, as for workers.
                None => CasOutcome::Conflict {
                    current: self.credential_version(worker).await?,
                },
            })
        })
        .await
    }

    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<CredentialSnapshot>> {
        self.call(async {
            let row = sqlx::query(sql::WORKER_CREDENTIAL)
                .bind(worker.as_str())
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(credential_snapshot).transpose()
        })
        .await
    }

    async fn worker_credentials(&self) -> Result<Vec<(WorkerId, CredentialSnapshot)>> {
        self.call(async {
            let rows = sqlx::query(sql::WORKER_CREDENTIALS)
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|r| {
                    let worker = WorkerId::parse("worker_id", r.try_get::<String, _>("worker_id")?)
                        .map_err(|source| PgError::Corrupt {
                            what: "worker credential's worker",
                            source,
                        })?;
                    Ok((worker, credential_snapshot(r)?))
                })
                .collect()
        })
        .await
    }

    async fn put_operator_session(&self, id_hash: &str, session: &OperatorSession) -> Result<()> {
        let expires_at = millis("expires_at", session.expires_at)?;
        let now = millis("created_at", session.created_at)?;
        self.call(async {
            sqlx::query(sql::PUT_OPERATOR_SESSION)
                .bind(id_hash)
                .bind(Json(session))
                .bind(expires_at)
                .bind(now)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    async fn operator_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<OperatorSession>> {
        let now = millis("now", now)?;
        self.call(async {
            let stored: Option<Json<OperatorSession>> = sqlx::query_scalar(sql::OPERATOR_SESSION)
                .bind(id_hash)
                .bind(now)
                .fetch_optional(self.pool())
                .await?;
            Ok(stored.map(|Json(session)| session))
        })
        .await
    }

    async fn end_operator_session(&self, id_hash: &str) -> Result<bool> {
        self.call(async {
            let done = sqlx::query(sql::END_OPERATOR_SESSION)
                .bind(id_hash)
                .execute(self.pool())
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn end_operator_sessions(&self) -> Result<u64> {
        self.call(async {
            let done = sqlx::query(sql::END_OPERATOR_SESSIONS)
                .execute(self.pool())
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}
