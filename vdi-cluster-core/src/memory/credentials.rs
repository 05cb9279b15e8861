//! [`Credentials`] in memory: join tokens newest first, worker credentials
//! by code, operators' page sessions by hash, each step under the one lock.

use async_trait::async_trait;

use super::MemoryStore;
use crate::credential::{CredentialSnapshot, WorkerCredential};
use crate::error::{Error, Result};
use crate::ids::WorkerId;
use crate::operator_session::OperatorSession;
use crate::store::{CasOutcome, ClaimOutcome, Credentials, JoinClaim, JoinToken};
use crate::time::Timestamp;

/// Whether `token` may be used at `now` for `worker`.
fn usable_for(token: &JoinToken, now: Timestamp, worker: &WorkerId, bound_only: bool) -> bool {
    let scope = match &token.worker {
        Some(bound) => bound == worker,
        None => !bound_only,
    };
    token.expires_at > now && token.uses < token.max_uses && scope
}

#[async_trait]
impl Credentials for MemoryStore {
    async fn put_join_token(&self, token: &JoinToken) -> Result<()> {
        let mut s = self.lock()?;
        if s.join_tokens
            .iter()
            .any(|t| t.id == token.id || t.token_hash == token.token_hash)
        {
            return Err(Error::Conflict {
                what: format!("join token {}", token.id),
            });
        }
        s.join_tokens.insert(0, token.clone());
        Ok(())
    }

    async fn redeem_join_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<JoinToken>> {
        let mut s = self.lock()?;
        let Some(t) = s
            .join_tokens
            .iter_mut()
            .find(|t| t.token_hash == token_hash)
        else {
            return Ok(None);
        };
        if t.expires_at <= now || t.uses >= t.max_uses {
            return Ok(None);
        }
        t.uses += 1;
        Ok(Some(t.clone()))
    }

    async fn join_tokens(&self) -> Result<Vec<JoinToken>> {
        Ok(self.lock()?.join_tokens.clone())
    }

    async fn revoke_join_token(&self, id: &str) -> Result<bool> {
        let mut s = self.lock()?;
        let before = s.join_tokens.len();
        s.join_tokens.retain(|t| t.id != id);
        Ok(s.join_tokens.len() != before)
    }

    async fn claim_worker(&self, claim: &JoinClaim) -> Result<ClaimOutcome> {
        let mut s = self.lock()?;
        let state = &mut *s;
        let Some(token) = state
            .join_tokens
            .iter_mut()
            .find(|t| t.token_hash == claim.token_hash)
        else {
            return Ok(ClaimOutcome::TokenRefused { token: None });
        };
        if !usable_for(token, claim.now, &claim.worker, claim.bound_only) {
            return Ok(ClaimOutcome::TokenRefused {
                token: Some(token.clone()),
            });
        }
        let current = state.credentials.get(&claim.worker).map(|c| c.version);
        if current != claim.expected {
            return Ok(ClaimOutcome::Conflict { current });
        }
        token.uses += 1;
        let version = current.unwrap_or(0) + 1;
        state.credentials.insert(
            claim.worker.clone(),
            CredentialSnapshot {
                credential: claim.credential.clone(),
                version,
            },
        );
        Ok(ClaimOutcome::Claimed {
            token: token.clone(),
            version,
        })
    }

    async fn put_worker_credential(
        &self,
        worker: &WorkerId,
        credential: &WorkerCredential,
        expected: Option<u64>,
    ) -> Result<CasOutcome> {
        let mut s = self.lock()?;
        let current = s.credentials.get(worker).map(|c| c.version);
        if current != expected {
            return Ok(CasOutcome::Conflict { current });
        }
        let version = current.unwrap_or(0) + 1;
        s.credentials.insert(
            worker.clone(),
            CredentialSnapshot {
                credential: credential.clone(),
                version,
            },
        );
        Ok(CasOutcome::Written { version })
    }

    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<CredentialSnapshot>> {
        Ok(self.lock()?.credentials.get(worker).cloned())
    }

    async fn worker_credentials(&self) -> Result<Vec<(WorkerId, CredentialSnapshot)>> {
        let s = self.lock()?;
        Ok(s.credentials
            .iter()
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect())
    }

    async fn put_operator_session(&self, id_hash: &str, session: &OperatorSession) -> Result<()> {
        let mut s = self.lock()?;
        s.operator_sessions
            .retain(|_, stored| stored.is_live(session.created_at));
        s.operator_sessions
            .insert(id_hash.to_owned(), session.clone());
        Ok(())
    }

    async fn operator_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<OperatorSession>> {
        Ok(self
            .lock()?
            .operator_sessions
            .get(id_hash)
            .filter(|s| s.is_live(now))
            .cloned())
    }

    async fn end_operator_session(&self, id_hash: &str) -> Result<bool> {
        Ok(self.lock()?.operator_sessions.remove(id_hash).is_some())
    }

    async fn end_operator_sessions(&self) -> Result<u64> {
        let ended = std::mem::take(&mut self.lock()?.operator_sessions);
        Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX))
    }
}
