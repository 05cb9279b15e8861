//! [`StartPermits`] on Redis: per worker, the held permits in a hash with
//! their grant time and lease end, the queue in two sorted sets (by
//! arrival, by lease end) and the last starts in a list; each step is one
//! Lua script (the limit is decided in core and passed in).

use async_trait::async_trait;
use vdi_cluster_core::pacing::{HeldPermit, PermitAnswer, StartPermits, StartQueue, StartSample};
use vdi_cluster_core::{Result, Timestamp, WorkerId};

use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// Two numbers separated by a space, as the scripts store them.
fn pair(key: &str, stored: &str) -> Result<(u64, u64), BackendError> {
    let malformed = || BackendError::unexpected("permit_read", Some(stored));
    let (a, b) = stored.split_once(' ').ok_or_else(malformed)?;
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|e| BackendError::malformed(key.to_owned(), "start permit", e))
    };
    Ok((number(a)?, number(b)?))
}

fn narrow(key: &str, n: u64) -> Result<u32, BackendError> {
    u32::try_from(n).map_err(|e| BackendError::malformed(key.to_owned(), "start sample", e))
}

#[async_trait]
impl StartPermits for RedisStore {
    async fn acquire_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<PermitAnswer> {
        let (granted, position, in_flight): (i64, u32, u32) = SCRIPTS
            .permit_acquire
            .key(self.keys.permits(worker, "held"))
            .key(self.keys.permits(worker, "waiting"))
            .key(self.keys.permits(worker, "waiting-until"))
            .key(self.keys.permits_seq())
            .arg(id)
            .arg(limit)
            .arg(now.as_millis())
            .arg(until.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(if granted == 1 {
            PermitAnswer::Granted { in_flight }
        } else {
            PermitAnswer::Waiting {
                position,
                in_flight,
            }
        })
    }

    async fn release_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        sample: Option<StartSample>,
        keep: u32,
    ) -> Result<bool> {
        let sample = sample.map_or_else(String::new, |s| format!("{} {}", s.millis, s.in_flight));
        let held: i64 = SCRIPTS
            .permit_release
            .key(self.keys.permits(worker, "held"))
            .key(self.keys.permits(worker, "waiting"))
            .key(self.keys.permits(worker, "waiting-until"))
            .key(self.keys.permits(worker, "samples"))
            .arg(id)
            .arg(sample)
            .arg(keep)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(held == 1)
    }

    async fn start_queue(&self, worker: &WorkerId, now: Timestamp) -> Result<StartQueue> {
        let key = self.keys.permits(worker, "held");
        let (held, waiting, samples): (Vec<String>, Vec<String>, Vec<String>) = SCRIPTS
            .permit_read
            .key(&key)
            .key(self.keys.permits(worker, "waiting"))
            .key(self.keys.permits(worker, "waiting-until"))
            .key(self.keys.permits(worker, "samples"))
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut permits = Vec::new();
        for entry in held.chunks(2) {
            let [id, stored] = entry else {
                return Err(BackendError::unexpected("permit_read", None).into());
            };
            let (since, until) = pair(&key, stored)?;
            if until > now.as_millis() {
                permits.push(HeldPermit {
                    id: id.clone(),
                    since: Timestamp(since),
                });
            }
        }
        permits.sort_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)));
        let samples = samples
            .iter()
            .map(|s| {
                let (millis, in_flight) = pair(&key, s)?;
                Ok(StartSample {
                    millis: narrow(&key, millis)?,
                    in_flight: narrow(&key, in_flight)?,
                })
            })
            .collect::<Result<_, BackendError>>()?;
        Ok(StartQueue {
            held: permits,
            waiting,
            samples,
        })
    }
}
