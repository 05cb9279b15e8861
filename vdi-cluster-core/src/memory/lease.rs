//! [`LeaderLease`] in memory: leases by name with their holder, token and
//! expiry on the store's clock, and the checkpoints saved beside them.

use std::time::Duration;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::store::{LeaderLease, Lease};

#[async_trait]
impl LeaderLease for MemoryStore {
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        let now = self.clock.now();
        let mut s = self.lock()?;
        let token = match s.leases.get(name) {
            Some((h, token, expires)) if *expires > now => {
                if h != holder {
                    return Ok(None);
                }
                *token
            }
            _ => {
                s.lease_tokens += 1;
                s.lease_tokens
            }
        };
        s.leases
            .insert(name.to_owned(), (holder.to_owned(), token, now.plus(ttl)));
        Ok(Some(Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
        }))
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        let mut s = self.lock()?;
        let held = s
            .leases
            .get(&lease.name)
            .is_some_and(|(h, t, _)| *h == lease.holder && *t == lease.token);
        if held {
            s.leases.remove(&lease.name);
        }
        Ok(held)
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>> {
        Ok(self.lock()?.checkpoints.get(name).cloned())
    }

    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &str) -> Result<()> {
        let now = self.clock.now();
        let mut s = self.lock()?;
        s.check_fence(Some(lease), now)?;
        s.checkpoints
            .insert(lease.name.clone(), checkpoint.to_owned());
        Ok(())
    }
}
