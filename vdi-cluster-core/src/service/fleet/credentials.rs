//! Workers' own credentials: joining with a join token, checking a
//! presented secret, rotation by the worker, revocation and reset by an
//! admin. The rules are [`credential`](crate::credential)'s; every write is
//! a compare-and-set on the stored credential, retried on conflict after
//! deciding again from what is stored.
//!
//! Secrets never reach this module: callers hand in hashes, and a
//! `matches(hash)` function that compares the presented secret in constant
//! time.

use serde_json::json;

use super::CAS_ATTEMPTS;
use super::Fleet;
use super::freeze::FreezeOverride;
use crate::credential::{
    CredentialCheck, CredentialSnapshot, IssuedSecret, JoinRefusal, Presented, WorkerCredential,
    join_plan,
};
use crate::error::{Error, Result};
use crate::ids::WorkerId;
use crate::store::{CasOutcome, ClaimOutcome, JoinClaim, JoinToken};
use crate::time::Timestamp;
use crate::worker::{WorkerDescription, WorkerView};

/// A worker that joined.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The worker, registered with the join's description.
    pub worker: WorkerView,
    /// The join token, after the use.
    pub token: JoinToken,
    /// The credential's secret (its hash) and validity.
    pub secret: IssuedSecret,
    /// Whether it re-joined a worker whose credential an admin reset.
    pub rejoined: bool,
}

/// Answer of [`Fleet::join`](crate::service::Fleet::join).
#[derive(Debug, Clone)]
pub enum JoinOutcome {
    /// Joined; the token's use is counted and the credential stored.
    Joined(Box<Joined>),
    /// Refused; nothing changed.
    Refused(JoinRefusal),
}

/// Answer of [`Fleet::rotate_credential`](crate::service::Fleet::rotate_credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The new secret (its hash) and validity.
    Rotated(IssuedSecret),
    /// The presented secret is not accepted; nothing changed.
    Refused(CredentialCheck),
}

/// Why a join token was refused for `worker`.
fn token_refusal(token: Option<&JoinToken>, worker: &WorkerId, bound_only: bool) -> JoinRefusal {
    let Some(token) = token else {
        return JoinRefusal::TokenInvalid;
    };
    match &token.worker {
        Some(bound) if bound != worker => JoinRefusal::TokenBoundElsewhere {
            bound: bound.to_string(),
        },
        None if bound_only => JoinRefusal::TokenNotBound,
        _ => JoinRefusal::TokenInvalid,
    }
}

impl Fleet {
    /// A worker joins with the join token whose hash is `token_hash`: a new
    /// code, or one whose credential an admin reset (then only with a
    /// token bound to it). The token's use and the credential (hash
    /// `secret_hash`, valid for the configured TTL) are written in one
    /// atomic step, so two joins for one code never both succeed; the
    /// worker is then registered with `description`.
    pub async fn join(
        &self,
        token_hash: &str,
        id: WorkerId,
        description: WorkerDescription,
        secret_hash: &str,
    ) -> Result<JoinOutcome> {
        description.validate()?;
        for _ in 0..CAS_ATTEMPTS {
            let now = self.shared.clock.now();
            let registered = self.shared.store.worker(&id).await?.is_some();
            let stored = self.shared.store.worker_credential(&id).await?;
            let plan = match join_plan(registered, stored.as_ref()) {
                Ok(plan) => plan,
                Err(refusal) => return Ok(JoinOutcome::Refused(refusal)),
            };
            let secret = IssuedSecret::new(secret_hash, now, self.shared.config.credentials.ttl);
            let claim = JoinClaim {
                token_hash: token_hash.to_owned(),
                now,
                worker: id.clone(),
                credential: WorkerCredential::issued(secret.clone()),
                expected: plan.expected,
                bound_only: plan.bound_only,
            };
            let claimed = self.shared.store.claim_worker(&claim).await;
            self.forget_credential(&id);
            match claimed? {
                ClaimOutcome::Claimed { token, .. } => {
                    let worker = self.register(id.clone(), description).await?;
                    let rejoined = plan.expected.is_some();
                    self.shared
                        .audit(
                            &format!("join-token:{}", token.id),
                            if rejoined { "rejoin" } else { "join" },
                            id.as_str(),
                            json!({"uses": token.uses, "maxUses": token.max_uses,
                               "expiresAt": secret.expires_at.as_millis()}),
                        )
                        .await?;
                    return Ok(JoinOutcome::Joined(Box::new(Joined {
                        worker,
                        token,
                        secret,
                        rejoined,
                    })));
                }
                ClaimOutcome::TokenRefused { token } => {
                    return Ok(JoinOutcome::Refused(token_refusal(
                        token.as_ref(),
                        &id,
                        plan.bound_only,
                    )));
                }
                ClaimOutcome::Conflict { .. } => {}
            }
        }
        Err(Error::Conflict {
            what: format!("credential of worker {id}"),
        })
    }

    /// Checks a secret presented for worker `id` (`matches(hash)`: whether
    /// it hashes to `hash`, in constant time). An acceptance may come from
    /// this replica's memory of the credential (at most
    /// [`ServiceConfig::credential_cache`](crate::ServiceConfig::credential_cache)
    /// old); a refusal always comes from a fresh read (see
    /// `credential_cache`).
    pub async fn check_credential(
        &self,
        id: &WorkerId,
        matches: impl Fn(&str) -> bool,
    ) -> Result<CredentialCheck> {
        let check = |stored: Option<&CredentialSnapshot>, now| match stored {
            Some(stored) => stored.credential.check(now, &matches),
            None => CredentialCheck::Unknown,
        };
        let now = self.shared.clock.now();
        if let Some(stored) = self.recall_credential(id, now) {
            let remembered = check(stored.as_ref(), now);
            if let CredentialCheck::Valid(_) = remembered {
                return Ok(remembered);
            }
        }
        let stored = self.read_credential(id, now).await?;
        Ok(check(stored.as_ref(), now))
    }

    /// Whether worker `id` has a credential of its own (in any state):
    /// then the shared worker token is refused for it. `false` may come
    /// from this replica's memory (at most
    /// [`ServiceConfig::credential_cache`](crate::ServiceConfig::credential_cache)
    /// old); `true` always comes from a fresh read.
    pub async fn has_own_credential(&self, id: &WorkerId) -> Result<bool> {
        let now = self.shared.clock.now();
        if let Some(None) = self.recall_credential(id, now) {
            return Ok(false);
        }
        Ok(self.read_credential(id, now).await?.is_some())
    }

    fn recall_credential(
        &self,
        id: &WorkerId,
        now: Timestamp,
    ) -> Option<Option<CredentialSnapshot>> {
        let ttl = self.shared.config.credential_cache;
        self.credentials.recall(id, now, ttl)
    }

    /// Reads worker `id`'s credential from the store and remembers it
    /// (unless this replica changed it meanwhile).
    async fn read_credential(
        &self,
        id: &WorkerId,
        now: Timestamp,
    ) -> Result<Option<CredentialSnapshot>> {
        let ticket = self.credentials.ticket();
        let stored = self.shared.store.worker_credential(id).await?;
        if !self.shared.config.credential_cache.is_zero() {
            self.credentials.remember(ticket, id, now, stored.clone());
        }
        Ok(stored)
    }

    /// Forgets what this replica remembers of worker `id`'s credential:
    /// called as every write of it returns (committed or not), so that
    /// neither the memory nor a read begun before the write outlives it.
    fn forget_credential(&self, id: &WorkerId) {
        self.credentials.forget(id);
    }

    /// Worker `id`, presenting an accepted secret, gets a new one (hash
    /// `next_hash`); the presented one stays accepted for the configured
    /// overlap. Refused if the presented secret is not accepted now (a
    /// rotation racing a revocation loses, or sees the revocation).
    pub async fn rotate_credential<M>(
        &self,
        id: &WorkerId,
        matches: &M,
        next_hash: &str,
    ) -> Result<RotateOutcome>
    where
        M: Fn(&str) -> bool + Sync,
    {
        let policy = self.shared.config.credentials;
        for _ in 0..CAS_ATTEMPTS {
            let now = self.shared.clock.now();
            let Some(stored) = self.shared.store.worker_credential(id).await? else {
                return Ok(RotateOutcome::Refused(CredentialCheck::Unknown));
            };
            let presented = match stored.credential.check(now, matches) {
                CredentialCheck::Valid(p) => p,
                refused => return Ok(RotateOutcome::Refused(refused)),
            };
            let next = IssuedSecret::new(next_hash, now, policy.ttl);
            let rotated = stored
                .credential
                .rotated(presented, next.clone(), now, &policy);
            let outcome = self
                .shared
                .store
                .put_worker_credential(id, &rotated, Some(stored.version))
                .await;
            self.forget_credential(id);
            let outcome = outcome?;
            if let CasOutcome::Written { .. } = outcome {
                let old_until = rotated.previous.as_ref().map(|s| s.expires_at.as_millis());
                self.shared.audit(
                    &format!("worker:{id}"),
                    "rotate-credential",
                    id.as_str(),
                    json!({"expiresAt": next.expires_at.as_millis(), "previousUntil": old_until,
                           "presented": if presented == Presented::Current { "current" } else { "previous" }}),
                )
                .await?;
                return Ok(RotateOutcome::Rotated(next));
            }
        }
        Err(Error::Conflict {
            what: format!("credential of worker {id}"),
        })
    }

    /// An admin revokes worker `id`'s credential: none of its secrets is
    /// accepted from the next request on. `false` if it has no credential.
    /// Idempotent.
    pub async fn revoke_credential(&self, id: &WorkerId, actor: &str) -> Result<bool> {
        self.revoke_credential_forcing(id, actor, FreezeOverride::Respect)
            .await
    }

    /// [`revoke_credential`](Self::revoke_credential), checked first
    /// against the change freeze (a worker refused from its next request
    /// leaves the fleet): refused with [`Error::Frozen`] when that makes
    /// an exam under way fit worse, unless `force` forces it.
    pub async fn revoke_credential_forcing(
        &self,
        id: &WorkerId,
        actor: &str,
        force: FreezeOverride<'_>,
    ) -> Result<bool> {
        // Nothing to revoke takes nobody out: no freeze to check.
        if self.shared.store.worker_credential(id).await?.is_none() {
            return Ok(false);
        }
        let change = "revoke-credential";
        let forced = self.check_freeze(id, change, actor, force).await?;
        let written = self
            .write_admin_state(id, actor, WorkerCredential::revoked(), change)
            .await?;
        if let (true, Some(forced)) = (written, forced) {
            self.forced_appended(id, actor, forced).await?;
        }
        Ok(written)
    }

    /// An admin resets worker `id`'s credential: none of its secrets is
    /// accepted, and a join token bound to `id` may join it again. Works
    /// for a worker that has a record or a credential (one registered with
    /// the shared token gets a credential this way).
    pub async fn reset_credential(&self, id: &WorkerId, actor: &str) -> Result<()> {
        self.reset_credential_forcing(id, actor, FreezeOverride::Respect)
            .await
    }

    /// [`reset_credential`](Self::reset_credential), checked first against
    /// the change freeze: refused with [`Error::Frozen`] when taking the
    /// worker out makes an exam under way fit worse, unless `force`
    /// forces it.
    pub async fn reset_credential_forcing(
        &self,
        id: &WorkerId,
        actor: &str,
        force: FreezeOverride<'_>,
    ) -> Result<()> {
        if self.shared.store.worker(id).await?.is_none()
            && self.shared.store.worker_credential(id).await?.is_none()
        {
            return Err(Error::WorkerNotFound(id.clone()));
        }
        let forced = self
            .check_freeze(id, "reset-credential", actor, force)
            .await?;
        // A record without a credential gets one in state reset.
        for _ in 0..CAS_ATTEMPTS {
            let expected = self
                .shared
                .store
                .worker_credential(id)
                .await?
                .map(|s| s.version);
            let outcome = self
                .shared
                .store
                .put_worker_credential(id, &WorkerCredential::reset(), expected)
                .await;
            self.forget_credential(id);
            let outcome = outcome?;
            if let CasOutcome::Written { .. } = outcome {
                self.shared
                    .audit(
                        actor,
                        "reset-credential",
                        id.as_str(),
                        serde_json::Value::Null,
                    )
                    .await?;
                if let Some(forced) = forced {
                    self.forced_appended(id, actor, forced).await?;
                }
                return Ok(());
            }
        }
        Err(Error::Conflict {
            what: format!("credential of worker {id}"),
        })
    }

    /// Writes `credential` over an existing one, compare-and-set, and
    /// audits `action`. `false` if there is none.
    async fn write_admin_state(
        &self,
        id: &WorkerId,
        actor: &str,
        credential: WorkerCredential,
        action: &str,
    ) -> Result<bool> {
        for _ in 0..CAS_ATTEMPTS {
            let Some(stored) = self.shared.store.worker_credential(id).await? else {
                return Ok(false);
            };
            let outcome = self
                .shared
                .store
                .put_worker_credential(id, &credential, Some(stored.version))
                .await;
            self.forget_credential(id);
            let outcome = outcome?;
            if let CasOutcome::Written { .. } = outcome {
                self.shared
                    .audit(actor, action, id.as_str(), serde_json::Value::Null)
                    .await?;
                return Ok(true);
            }
        }
        Err(Error::Conflict {
            what: format!("credential of worker {id}"),
        })
    }
}
