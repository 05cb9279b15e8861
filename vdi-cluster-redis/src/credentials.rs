//! [`Credentials`] on Redis: a hash per join token (the token's JSON plus
//! the fields the redeem script checks), an index from secret hash to id,
//! and one hash of worker credentials.

use async_trait::async_trait;
use vdi_cluster_core::store::{Credentials, JoinToken};
use vdi_cluster_core::{Error, Result, Timestamp, WorkerId};

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

    async fn put_worker_credential(&self, worker: &WorkerId, token_hash: &str) -> Result<()> {
        redis::cmd("HSET")
            .arg(self.keys.worker_credentials())
            .arg(worker.as_str())
            .arg(token_hash)
            .exec_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(())
    }

    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<String>> {
        let hash: Option<String> = redis::cmd("HGET")
            .arg(self.keys.worker_credentials())
            .arg(worker.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(hash)
    }
}
