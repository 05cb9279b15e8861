//! [`LeaderLease`] on Redis: a hash with the holder and a fencing token,
//! expiring by the server's clock; tokens come from one `INCR` counter.
//! The checkpoint beside a lease is a string of its own, without a TTL,
//! written by a script fenced by the lease.

use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::Result;
use vdi_cluster_core::store::{LeaderLease, Lease};

use crate::dispatch::{fenced, ttl_millis};
use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

#[async_trait]
impl LeaderLease for RedisStore {
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        let key = self.keys.lease(name);
        let token: Option<String> = SCRIPTS
            .lease_acquire
            .key(&key)
            .key(self.keys.lease_token())
            .arg(holder)
            .arg(ttl_millis(ttl))
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let Some(token) = token else {
            return Ok(None);
        };
        let token = token
            .parse()
            .map_err(|e| BackendError::malformed(key, "lease token", e))?;
        Ok(Some(Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
        }))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        let released: i64 = SCRIPTS
            .lease_release
            .key(self.keys.lease(&lease.name))
            .arg(&lease.holder)
            .arg(lease.token)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(released == 1)
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>> {
        let text: Option<String> = redis::cmd("GET")
            .arg(self.keys.checkpoint(name))
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(text)
    }

    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &str) -> Result<()> {
        let _saved: i64 = SCRIPTS
            .lease_checkpoint
            .key(self.keys.checkpoint(&lease.name))
            .key(self.keys.lease(&lease.name))
            .arg(checkpoint)
            .arg(&lease.holder)
            .arg(lease.token)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| fenced(e, Some(lease)))?;
        Ok(())
    }
}
