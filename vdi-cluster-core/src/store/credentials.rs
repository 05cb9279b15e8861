//! The credentials part of a store: join tokens and workers' own
//! credentials ([`Credentials`]), and the operators' page sessions kept
//! beside them.

use super::*;

/// A join token, as stored: only a hash of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinToken {
    /// Public id, for listing and revoking.
    pub id: String,
    /// SHA-256 (hex) of the secret; the secret itself is shown once and
    /// never stored.
    pub token_hash: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// After this instant it is refused.
    pub expires_at: Timestamp,
    /// How many registrations it allows.
    pub max_uses: u32,
    /// Registrations made with it so far.
    pub uses: u32,
    /// The one worker code it may join, if an admin bound it (`None`: it
    /// may only create new workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerId>,
}

/// An atomic join: redeem a join token and write the joining worker's
/// credential, or change nothing ([`Credentials::claim_worker`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinClaim {
    /// SHA-256 (hex) of the presented join token.
    pub token_hash: String,
    /// The control plane's clock.
    pub now: Timestamp,
    /// The joining worker's code.
    pub worker: WorkerId,
    /// The credential to write.
    pub credential: WorkerCredential,
    /// The stored credential version expected (`None`: no credential).
    pub expected: Option<u64>,
    /// Only a token bound to `worker` may be used.
    pub bound_only: bool,
}

/// Answer of [`Credentials::claim_worker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// One use was counted and the credential written.
    Claimed {
        /// The token after the use.
        token: JoinToken,
        /// The credential's new version.
        version: u64,
    },
    /// The token cannot be used for this worker now (unknown, expired, used
    /// up, bound to another worker, or unbound when `bound_only`). Nothing
    /// changed.
    TokenRefused {
        /// The stored token with this hash, if there is one.
        token: Option<JoinToken>,
    },
    /// The credential's version is not the expected one. Nothing changed.
    Conflict {
        /// The stored version (`None`: no credential).
        current: Option<u64>,
    },
}

/// Join tokens and per-worker credentials (SkyPanelV2, minicloud): a worker joins
/// with a token an operator created, and gets its own credential.
///
/// # Contract
///
/// * Only hashes of secrets are stored.
/// * [`redeem_join_token`](Self::redeem_join_token) and
///   [`claim_worker`](Self::claim_worker) count a use atomically: racing
///   replicas never use a token more than `max_uses` times.
/// * Worker credentials are versioned; every write is a compare-and-set on
///   the version ([`put_worker_credential`](Self::put_worker_credential),
///   [`claim_worker`](Self::claim_worker)), and bumps it. Two writers that
///   read the same version never both succeed: two joins for one code, or a
///   rotation racing a revocation, have one winner.
/// * [`claim_worker`](Self::claim_worker) checks the token and the
///   credential's version and writes both in one indivisible step.
/// * An operators' page session that was ended, on any handle, or that
///   expired is never answered again
///   ([`operator_session`](Self::operator_session)).
#[async_trait]
pub trait Credentials: Debug + Send + Sync + 'static {
    /// Stores a new join token (its `id` and `token_hash` are unique).
    async fn put_join_token(&self, token: &JoinToken) -> Result<()>;

    /// Atomically counts one use of the join token whose hash is
    /// `token_hash`, if it exists, has not expired at `now` and has uses
    /// left; returns it after the use. `None` otherwise (nothing changes).
    async fn redeem_join_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<JoinToken>>;

    /// Every join token, newest first.
    async fn join_tokens(&self) -> Result<Vec<JoinToken>>;

    /// Deletes a join token. `false` if there was none with this id.
    async fn revoke_join_token(&self, id: &str) -> Result<bool>;

    /// Atomically, if the join token whose hash is `claim.token_hash`
    /// exists, has not expired at `claim.now`, has uses left and is bound
    /// to `claim.worker` (or to no worker, unless `claim.bound_only`), and
    /// the stored credential's version is `claim.expected`: counts one use
    /// of the token and writes `claim.credential` with a bumped version.
    /// Otherwise nothing changes; the token is checked first.
    async fn claim_worker(&self, claim: &JoinClaim) -> Result<ClaimOutcome>;

    /// Writes `worker`'s credential if the stored version equals `expected`
    /// (`None`: only if it has none), and bumps the version.
    async fn put_worker_credential(
        &self,
        worker: &WorkerId,
        credential: &WorkerCredential,
        expected: Option<u64>,
    ) -> Result<CasOutcome>;

    /// `worker`'s own credential, with its version.
    async fn worker_credential(&self, worker: &WorkerId) -> Result<Option<CredentialSnapshot>>;

    /// Every worker's own credential, with its version, in any order
    /// (a store's export reads them all; a credential may exist without a
    /// worker record).
    async fn worker_credentials(&self) -> Result<Vec<(WorkerId, CredentialSnapshot)>>;

    /// Stores an operators' page session under `id_hash` (SHA-256 hex of
    /// its opaque id), replacing any with that hash; may forget sessions
    /// that expired.
    async fn put_operator_session(&self, id_hash: &str, session: &OperatorSession) -> Result<()>;

    /// The session stored under `id_hash`, if it is live at `now`.
    async fn operator_session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<OperatorSession>>;

    /// Ends the session stored under `id_hash`. `false` if there was none.
    async fn end_operator_session(&self, id_hash: &str) -> Result<bool>;

    /// Ends every operators' page session; how many were stored (expired
    /// ones not yet forgotten included).
    async fn end_operator_sessions(&self) -> Result<u64>;
}
