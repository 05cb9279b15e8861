//! Workers' own credentials: what a join may do, when a credential is
//! accepted, and the rotation, revocation and reset that make up its
//! lifecycle. Pure: time arrives as `now`, secrets only as hashes, and the
//! comparison of a presented secret with a stored hash is the caller's
//! (constant time, in the protocol crate).
//!
//! # Lifecycle
//!
//! * **Join** ([`join_plan`]): a join token creates a *new* worker — no
//!   worker record and no credential under that code. A token an admin
//!   bound to one code may also create that worker, and is the only way
//!   back for a worker whose credential was [reset](WorkerCredential::reset).
//!   A code that has a record or a credential is otherwise refused: joining
//!   never takes a worker over.
//! * **Expiry**: every secret is issued for [`CredentialPolicy::ttl`].
//! * **Rotation** ([`WorkerCredential::rotated`]): a worker presenting an
//!   accepted secret gets a new one; the presented secret stays accepted
//!   for [`CredentialPolicy::overlap`] (never past its own expiry), so no
//!   heartbeat in flight is refused.
//! * **Revocation** ([`WorkerCredential::revoked`]): nothing is accepted
//!   from the next request on; the code stays taken.
//! * **Reset** ([`WorkerCredential::reset`]): nothing is accepted, and a
//!   join token bound to the code may join it again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// How long credentials live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// Lifetime of a newly issued secret (default 30 days).
    pub ttl: Duration,
    /// How long a rotated secret stays accepted after the rotation
    /// (default 1 hour; never past its own expiry).
    pub overlap: Duration,
}

/// Default lifetime of a worker credential: 30 days.
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default overlap of a rotation: 1 hour.
pub const DEFAULT_CREDENTIAL_OVERLAP: Duration = Duration::from_secs(3600);

impl Default for CredentialPolicy {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_CREDENTIAL_TTL,
            overlap: DEFAULT_CREDENTIAL_OVERLAP,
        }
    }
}

/// One issued secret, as stored: its hash and validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedSecret {
    /// SHA-256 (hex) of the secret; the secret is shown once and never
    /// stored.
    pub hash: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// Refused from this instant on.
    pub expires_at: Timestamp,
}

impl IssuedSecret {
    /// A secret with hash `hash` issued at `now` for `ttl`.
    pub fn new(hash: impl Into<String>, now: Timestamp, ttl: Duration) -> Self {
        Self {
            hash: hash.into(),
            issued_at: now,
            expires_at: now.plus(ttl),
        }
    }

    fn live_at(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

/// Where a worker's credential stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// Its secrets are accepted until they expire.
    Active,
    /// Reset by an admin: nothing is accepted; a join token bound to the
    /// code may join it again.
    Reset,
    /// Revoked by an admin: nothing is accepted.
    Revoked,
}

/// Which of a credential's secrets a caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The newest one.
    Current,
    /// The one a rotation replaced, still within its overlap.
    Previous,
}

/// What checking a presented secret found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialCheck {
    /// Accepted.
    Valid(Presented),
    /// It matched a secret that has expired.
    Expired,
    /// The credential was revoked.
    Revoked,
    /// The credential was reset; the worker must join again.
    Reset,
    /// It matches no secret of this worker.
    Unknown,
}

/// A worker's own credential, as stored (the backend adds a version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCredential {
    /// Where it stands.
    pub state: CredentialState,
    /// The newest secret (none once revoked or reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<IssuedSecret>,
    /// The secret the last rotation replaced, accepted until its
    /// `expires_at` (shortened to the overlap at the rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<IssuedSecret>,
}

impl WorkerCredential {
    /// A fresh credential whose only secret is `secret`.
    pub fn issued(secret: IssuedSecret) -> Self {
        Self {
            state: CredentialState::Active,
            current: Some(secret),
            previous: None,
        }
    }

    /// Revoked: nothing is accepted.
    pub fn revoked() -> Self {
        Self {
            state: CredentialState::Revoked,
            current: None,
            previous: None,
        }
    }

    /// Reset: nothing is accepted; a bound join token may join again.
    pub fn reset() -> Self {
        Self {
            state: CredentialState::Reset,
            current: None,
            previous: None,
        }
    }

    /// Checks a presented secret at `now`; `matches(hash)` says whether it
    /// hashes to `hash` (in constant time). Every stored hash is compared,
    /// whatever the outcome.
    pub fn check(&self, now: Timestamp, matches: impl Fn(&str) -> bool) -> CredentialCheck {
        let current = self.current.as_ref().map(|s| (s, matches(&s.hash)));
        let previous = self.previous.as_ref().map(|s| (s, matches(&s.hash)));
        match self.state {
            CredentialState::Revoked => return CredentialCheck::Revoked,
            CredentialState::Reset => return CredentialCheck::Reset,
            CredentialState::Active => {}
        }
        match (current, previous) {
            (Some((s, true)), _) if s.live_at(now) => CredentialCheck::Valid(Presented::Current),
            (_, Some((s, true))) if s.live_at(now) => CredentialCheck::Valid(Presented::Previous),
            (Some((_, true)), _) | (_, Some((_, true))) => CredentialCheck::Expired,
            _ => CredentialCheck::Unknown,
        }
    }

    /// The credential after a rotation at `now` by a caller who presented
    /// `presented` (an accepted secret): `next` becomes current, and the
    /// presented secret stays accepted for the overlap (never longer than
    /// it would have been). A secret presented during its own overlap
    /// keeps its deadline; the one it skipped is dropped.
    pub fn rotated(
        &self,
        presented: Presented,
        next: IssuedSecret,
        now: Timestamp,
        policy: &CredentialPolicy,
    ) -> Self {
        let kept = match presented {
            Presented::Current => self.current.clone().map(|mut s| {
                s.expires_at = s.expires_at.min(now.plus(policy.overlap));
                s
            }),
            Presented::Previous => self.previous.clone(),
        };
        Self {
            state: CredentialState::Active,
            current: Some(next),
            previous: kept,
        }
    }
}

/// A stored credential with its version (the compare-and-set token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSnapshot {
    /// The credential.
    pub credential: WorkerCredential,
    /// Grows with every write.
    pub version: u64,
}

/// What a join may write, decided before the atomic claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinPlan {
    /// The credential version the claim expects (`None`: no credential).
    pub expected: Option<u64>,
    /// Whether only a join token bound to this code may be used (a
    /// re-join after a reset).
    pub bound_only: bool,
}

/// Why a join is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The code is taken: a worker registered under it, or its credential
    /// is live or revoked. An admin must reset its credential first.
    CodeTaken {
        /// Whether the code has a credential (else only a record).
        has_credential: bool,
    },
    /// The join token is unknown, expired, revoked or used up.
    TokenInvalid,
    /// The join token is bound to another worker.
    TokenBoundElsewhere {
        /// The code it is bound to.
        bound: String,
    },
    /// Re-joining a reset worker needs a join token bound to it.
    TokenNotBound,
}

/// What a join for a code may do, given whether a worker record exists
/// under it and its stored credential.
pub fn join_plan(
    registered: bool,
    stored: Option<&CredentialSnapshot>,
) -> Result<JoinPlan, JoinRefusal> {
    match stored {
        None if !registered => Ok(JoinPlan {
            expected: None,
            bound_only: false,
        }),
        None => Err(JoinRefusal::CodeTaken {
            has_credential: false,
        }),
        Some(s) => match s.credential.state {
            CredentialState::Reset => Ok(JoinPlan {
                expected: Some(s.version),
                bound_only: true,
            }),
            CredentialState::Active | CredentialState::Revoked => Err(JoinRefusal::CodeTaken {
                has_credential: true,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_000_000);

    fn policy() -> CredentialPolicy {
        CredentialPolicy {
            ttl: Duration::from_secs(100),
            overlap: Duration::from_secs(10),
        }
    }

    fn eq(h: &'static str) -> impl Fn(&str) -> bool {
        move |stored| stored == h
    }

    #[test]
    fn a_secret_is_accepted_until_it_expires() {
        let c = WorkerCredential::issued(IssuedSecret::new("a", T0, policy().ttl));
        assert_eq!(
            c.check(T0, eq("a")),
            CredentialCheck::Valid(Presented::Current)
        );
        assert_eq!(c.check(T0, eq("b")), CredentialCheck::Unknown);
        let end = T0.plus(policy().ttl);
        assert_eq!(
            c.check(end.minus(Duration::from_millis(1)), eq("a")),
            CredentialCheck::Valid(Presented::Current)
        );
        assert_eq!(c.check(end, eq("a")), CredentialCheck::Expired);
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_overlap_only() {
        let p = policy();
        let c = WorkerCredential::issued(IssuedSecret::new("a", T0, p.ttl));
        let at = T0.plus(Duration::from_secs(60));
        let r = c.rotated(
            Presented::Current,
            IssuedSecret::new("b", at, p.ttl),
            at,
            &p,
        );
        assert_eq!(
            r.check(at, eq("b")),
            CredentialCheck::Valid(Presented::Current)
        );
        assert_eq!(
            r.check(at, eq("a")),
            CredentialCheck::Valid(Presented::Previous)
        );
        let after = at.plus(p.overlap);
        assert_eq!(r.check(after, eq("a")), CredentialCheck::Expired);
        assert_eq!(
            r.check(after, eq("b")),
            CredentialCheck::Valid(Presented::Current)
        );
        // Near its expiry the overlap never extends the old secret.
        let late = T0.plus(Duration::from_secs(95));
        let r = c.rotated(
            Presented::Current,
            IssuedSecret::new("b", late, p.ttl),
            late,
            &p,
        );
        assert_eq!(r.previous.unwrap().expires_at, T0.plus(p.ttl));
        // Rotating again with the previous secret keeps its deadline and
        // drops the secret it never received.
        let r = c.rotated(
            Presented::Current,
            IssuedSecret::new("b", at, p.ttl),
            at,
            &p,
        );
        let again = r.rotated(
            Presented::Previous,
            IssuedSecret::new("c", at, p.ttl),
            at,
            &p,
        );
        assert_eq!(again.check(at, eq("b")), CredentialCheck::Unknown);
        assert_eq!(again.previous.as_ref().unwrap().hash, "a");
        assert_eq!(again.previous.unwrap().expires_at, at.plus(p.overlap));
    }

    #[test]
    fn revoked_and_reset_credentials_accept_nothing() {
        assert_eq!(
            WorkerCredential::revoked().check(T0, |_| true),
            CredentialCheck::Revoked
        );
        assert_eq!(
            WorkerCredential::reset().check(T0, |_| true),
            CredentialCheck::Reset
        );
    }

    #[test]
    fn a_join_creates_a_worker_or_rejoins_a_reset_one_only() {
        let fresh = join_plan(false, None).unwrap();
        assert_eq!((fresh.expected, fresh.bound_only), (None, false));
        assert_eq!(
            join_plan(true, None),
            Err(JoinRefusal::CodeTaken {
                has_credential: false
            })
        );
        let snap = |credential| CredentialSnapshot {
            credential,
            version: 4,
        };
        let active = snap(WorkerCredential::issued(IssuedSecret::new(
            "a",
            T0,
            policy().ttl,
        )));
        for registered in [false, true] {
            assert_eq!(
                join_plan(registered, Some(&active)),
                Err(JoinRefusal::CodeTaken {
                    has_credential: true
                })
            );
            assert!(join_plan(registered, Some(&snap(WorkerCredential::revoked()))).is_err());
            let plan = join_plan(registered, Some(&snap(WorkerCredential::reset()))).unwrap();
            assert_eq!((plan.expected, plan.bound_only), (Some(4), true));
        }
    }

    #[test]
    fn stored_json_names() {
        let c = WorkerCredential::issued(IssuedSecret::new(
            "h",
            Timestamp(1),
            Duration::from_millis(9),
        ));
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"state": "active", "current": {"hash": "h", "issuedAt": 1, "expiresAt": 10}})
        );
        assert_eq!(
            serde_json::to_value(WorkerCredential::revoked()).unwrap(),
            serde_json::json!({"state": "revoked"})
        );
    }
}
