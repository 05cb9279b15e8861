//! [`StartPermits`] on Redis: per worker, the held permits in a hash with
//! their grant time and lease end, the queue in two sorted sets (by
//! arrival, by lease end) and the last starts in a list; each step is one
//! Lua script (the limit is decided in core and passed in). A permit taken
//! with compare-and-reserve and given back with the confirmation or the
//! undo runs in those steps' scripts, with the helpers of prelude.lua.

use async_trait::async_trait;
use redis::ScriptInvocation;
use vdi_cluster_core::pacing::{
    HeldPermit, PermitAnswer, PermitRequest, PermitReturn, StartPermits, StartQueue, StartSample,
};
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

/// A start's sample as the scripts store it: "millis in_flight".
fn sample_arg(s: &StartSample) -> String {
    format!("{} {}", s.millis, s.in_flight)
}

impl RedisStore {
    /// The four keys of `worker`'s start permits, in the order the scripts
    /// read them (`permit_keys` in prelude.lua): held, waiting, waiting
    /// leases, samples.
    pub(crate) fn permit_keys(&self, invocation: &mut ScriptInvocation<'_>, worker: &WorkerId) {
        for part in ["held", "waiting", "waiting-until", "samples"] {
            invocation.key(self.keys.permits(worker, part));
        }
    }

    /// A compare-and-reserve's permit request as `reserve.lua` reads it
    /// (ARGV[3]), pushing the worker's permit keys when there is one.
    pub(crate) fn permit_request(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        worker: &WorkerId,
        asked: Option<&PermitRequest>,
    ) {
        match asked {
            Some(p) => {
                self.permit_keys(invocation, worker);
                invocation.arg(format!(
                    "{} {} {}",
                    p.limit,
                    p.now.as_millis(),
                    p.until.as_millis()
                ));
            }
            None => {
                invocation.arg("");
            }
        }
    }

    /// A permit given back by `confirm.lua` or `undo.lua`, as
    /// `permit_return` in prelude.lua reads it, pushing the worker's
    /// permit keys when there is one.
    pub(crate) fn permit_return(
        &self,
        invocation: &mut ScriptInvocation<'_>,
        given: Option<&PermitReturn>,
    ) {
        match given {
            Some(p) => {
                self.permit_keys(invocation, &p.worker);
                invocation.arg(match &p.sample {
                    Some(s) => format!("{} {}", p.keep, sample_arg(s)),
                    None => p.keep.to_string(),
                });
            }
            None => {
                invocation.arg("");
            }
        }
    }
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
        let sample = sample.map_or_else(String::new, |s| sample_arg(&s));
        let mut invocation = SCRIPTS.permit_release.prepare_invoke();
        self.permit_keys(&mut invocation, worker);
        let held: i64 = invocation
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
