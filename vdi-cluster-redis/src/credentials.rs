//! [`Credentials`] on Redis: a hash per join token (the token's JSON plus
//! the fields the redeem script checks), an index from secret hash to id,
//! one hash of worker credentials (`<version> <json>` per code,
//! written only by compare-and-set scripts), and one hash of operators'
//! page sessions (by the hash of their id, expired ones forgotten at the
//! next sign-in).

use async_trait::async_trait;
use vdi_cluster_core::credential::{CredentialSnapshot, IssuedSecret, WorkerCredential};
use vdi_cluster_core::operator_session::OperatorSession;
use vdi_cluster_core::store::{CasOutcome, ClaimOutcome, Credentials, JoinClaim, JoinToken};
use vdi_cluster_core::{Error, Result, Timestamp, WorkerId};

use crate::codec::{cas_outcome, expected_arg};
use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

impl RedisStore {
    fn decode_token(&self, key: &str, json: &str, uses: u32) -> Result<JoinToken> {
        let mut token: JoinToken = serde_json::from_str(json)
            .map_err(|e| BackendError::malformed(key.to_owned(), "join token", e))?;
        token.uses = uses;
        Ok(token)
    }
}

#[async_trait]
impl Credentials for RedisStore {
    async fn put_join_token(&self, token: &JoinToken) -> Result<()> {
        let key = self.keys.join_token(&token.id);
        let json = serde_json::to_string(token)
            .map_err(|e| BackendError::malformed(key.clone(), "join token", e))?;
        let stored: i64 = SCRIPTS
            .put_join_token
            .key(self.keys.join_tokens())
            .key(&key)
            .arg(&token.token_hash)
            .arg(&token.id)
            .arg(json)
            .arg(token.expires_at.as_millis())
            .arg(token.max_uses)
            .arg(token.uses)
            .arg(
                token
                    .worker
                    .as_ref()
                    .map(WorkerId::as_str)
                    .unwrap_or_default(),
            )
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        if stored == 0 {
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
        let id: Option<String> = redis::cmd("HGET")
            .arg(self.keys.join_tokens())
            .arg(token_hash)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let Some(id) = id else {
            return Ok(None);
        };
        let key = self.keys.join_token(&id);
        let redeemed: Option<(String, u32)> = SCRIPTS
            .redeem_join_token
            .key(&key)
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        redeemed
            .map(|(json, uses)| self.decode_token(&key, &json, uses))
            .transpose()
    }

    async fn join_tokens(&self) -> Result<Vec<JoinToken>> {
        let ids: Vec<String> = redis::cmd("HVALS")
            .arg(self.keys.join_tokens())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        if ids.is_empty() {
            // An empty pipeline is not a command Redis takes.
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET")
                .arg(self.keys.join_token(id))
                .arg("json")
                .arg("uses");
        }
        let rows: Vec<(Option<String>, Option<u32>)> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut tokens = Vec::with_capacity(rows.len());
        for (id, row) in ids.iter().zip(rows) {
            if let (Some(json), uses) = row {
                tokens.push(self.decode_token(
                    &self.keys.join_token(id),
                    &json,
                    uses.unwrap_or(0),
                )?);
            }
        }
        tokens.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(tokens)
    }

    async fn revoke_join_token(&self, id: &str) -> Result<bool> {
        let key = self.keys.join_token(id);
        let json: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("json")
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let Some(json) = json else {
            return Ok(false);
        };
        let token = self.decode_token(&key, &json, 0)?;
        let (deleted, _): (i64, i64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&key)
            .cmd("HDEL")
            .arg(self.keys.join_tokens())
            .arg(&token.token_hash)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(deleted == 1)
    }

    async fn claim_worker(&self, claim: &JoinClaim) -> Result<ClaimOutcome> {
        let id: Option<String> = redis::cmd("HGET")
            .arg(self.keys.join_tokens())
            .arg(&claim.token_hash)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let Some(id) = id else {
            return Ok(ClaimOutcome::TokenRefused { token: None });
        };
        let key = self.keys.join_token(&id);
        let json = encode_credential(&claim.worker, &claim.credential)?;
        let reply: Vec<String> = SCRIPTS
            .claim_worker
            .key(&key)
            .key(self.keys.worker_credentials())
            .arg(claim.now.as_millis())
            .arg(claim.worker.as_str())
            .arg(if claim.bound_only { "1" } else { "0" })
            .arg(expected_arg(claim.expected))
            .arg(json)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let status = reply.first().map(String::as_str);
        let bad = || BackendError::unexpected("claim_worker", status);
        let number = |i: usize| reply.get(i).and_then(|n| n.parse::<i64>().ok());
        let token = |uses: Option<i64>| -> Result<JoinToken> {
            let json = reply.get(1).ok_or_else(bad)?;
            let uses = uses.and_then(|u| u32::try_from(u).ok()).ok_or_else(bad)?;
            self.decode_token(&key, json, uses)
        };
        match status {
            Some("claimed") => Ok(ClaimOutcome::Claimed {
                token: token(number(2))?,
                version: number(3)
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(bad)?,
            }),
            Some("refused") if reply.len() == 1 => Ok(ClaimOutcome::TokenRefused { token: None }),
            Some("refused") => Ok(ClaimOutcome::TokenRefused {
                token: Some(token(number(2))?),
            }),
            Some("conflict") => Ok(ClaimOutcome::Conflict {
                current: number(1).ok_or_else(bad)?.try_into().ok(),
            }),
            _ => Err(bad().into()),
        }
    }

    async fn put_worker_credential(
        &self,
        worker: &WorkerId,
        credential: &WorkerCredential,
        expected: Option<u64>,
    ) -> Result<CasOutcome> {
        let json = encode_credential(worker, credential)?;
        let (written, version): (i64, i64) = SCRIPTS
            .put_worker_credential
            .key(self.keys.worker_credentials())
            .arg(worker.as_str())
            .arg(expected_arg(expected))
            .arg(json)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(cas_outcome(written, version))
    }

    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<CredentialSnapshot>> {
        let stored: Option<String> = redis::cmd("HGET")
            .arg(self.keys.worker_credentials())
            .arg(worker.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        stored
            .map(|s| decode_credential(&self.keys.worker_credentials(), &s))
            .transpose()
    }

    async fn worker_credentials(&self) -> Result<Vec<(WorkerId, CredentialSnapshot)>> {
        let key = self.keys.worker_credentials();
        let stored: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        stored
            .into_iter()
            .map(|(worker, s)| {
                let worker = WorkerId::parse("worker", worker).map_err(|e| {
                    BackendError::malformed(key.clone(), "worker credential's code", e)
                })?;
                Ok((worker, decode_credential(&key, &s)?))
            })
            .collect()
    }

    async fn put_operator_session(&self, id_hash: &str, session: &OperatorSession) -> Result<()> {
        let key = self.keys.operator_sessions();
        let json = serde_json::to_string(session)
            .map_err(|e| BackendError::malformed(key.clone(), "operator session", e))?;
        let stored: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        // Forget the expired ones (a field written again since is only
        // removed if it expired too: the next read checks the expiry).
        let mut expired = Vec::new();
        for (hash, json) in &stored {
            if !decode_session(&key, json)?.is_live(session.created_at) {
                expired.push(hash.as_str());
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        if !expired.is_empty() {
            pipe.cmd("HDEL").arg(&key).arg(&expired).ignore();
        }
        pipe.cmd("HSET").arg(&key).arg(id_hash).arg(json).ignore();
        let () = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn operator_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<OperatorSession>> {
        let key = self.keys.operator_sessions();
        let stored: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg(id_hash)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let Some(json) = stored else {
            return Ok(None);
        };
        let session = decode_session(&key, &json)?;
        Ok(session.is_live(now).then_some(session))
    }

    async fn end_operator_session(&self, id_hash: &str) -> Result<bool> {
        let removed: i64 = redis::cmd("HDEL")
            .arg(self.keys.operator_sessions())
            .arg(id_hash)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(removed == 1)
    }

    async fn end_operator_sessions(&self) -> Result<u64> {
        let key = self.keys.operator_sessions();
        let (stored, _): (u64, i64) = redis::pipe()
            .atomic()
            .cmd("HLEN")
            .arg(&key)
            .cmd("DEL")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(stored)
    }
}

fn decode_session(key: &str, json: &str) -> Result<OperatorSession> {
    serde_json::from_str(json)
        .map_err(|e| BackendError::malformed(key.to_owned(), "operator session", e).into())
}

/// The version argument of the compare-and-set scripts ('' expects none).
fn encode_credential(worker: &WorkerId, credential: &WorkerCredential) -> Result<String> {
    serde_json::to_string(credential)
        .map_err(|e| BackendError::malformed(worker.to_string(), "worker credential", e).into())
}

/// A stored credential, `<version> <json>`; a bare hash (stored before
/// credentials had a lifecycle) is an active credential of version 0 that
/// never expires, until it is rotated, revoked or reset.
fn decode_credential(key: &str, stored: &str) -> Result<CredentialSnapshot> {
    let Some((version, json)) = stored.split_once(' ') else {
        return Ok(CredentialSnapshot {
            credential: WorkerCredential::issued(IssuedSecret {
                hash: stored.to_owned(),
                issued_at: Timestamp(0),
                expires_at: Timestamp(u64::MAX),
            }),
            version: 0,
        });
    };
    let version = version
        .parse()
        .map_err(|e| BackendError::malformed(key.to_owned(), "worker credential version", e))?;
    let credential = serde_json::from_str(json)
        .map_err(|e| BackendError::malformed(key.to_owned(), "worker credential", e))?;
    Ok(CredentialSnapshot {
        credential,
        version,
    })
}

#[cfg(test)]
mod tests {
    use vdi_cluster_core::credential::{CredentialCheck, CredentialState, Presented};

    use super::*;

    #[test]
    fn stored_credentials_decode_with_their_version() {
        let credential = WorkerCredential::issued(IssuedSecret {
            hash: "abc".into(),
            issued_at: Timestamp(1),
            expires_at: Timestamp(9),
        });
        let json = encode_credential(&WorkerId::parse("code", "w1").unwrap(), &credential).unwrap();
        let read = decode_credential("k", &format!("7 {json}")).unwrap();
        assert_eq!((read.credential, read.version), (credential, 7));
        assert!(decode_credential("k", "x {").is_err());
        assert!(decode_credential("k", "7 {").is_err());
    }

    #[test]
    fn a_bare_hash_from_before_versions_is_an_active_credential() {
        let read = decode_credential("k", "0123abcd").unwrap();
        assert_eq!(read.version, 0);
        assert_eq!(read.credential.state, CredentialState::Active);
        assert_eq!(
            read.credential
                .check(Timestamp(u64::MAX - 1), |h| h == "0123abcd"),
            CredentialCheck::Valid(Presented::Current)
        );
    }
}
