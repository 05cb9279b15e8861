//! Credential formats and how they are kept: only as SHA-256 hashes,
//! compared in constant time.
//!
//! * A shared token (the worker token, the cluster token) is held as a
//!   [`TokenHash`].
//! * A worker's own credential is `vdiw.<code>.<secret>`
//!   ([`WORKER_CREDENTIAL_PREFIX`]); join tokens and worker credentials are
//!   stored as [`hash_hex`].

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vdi_cluster_core::WorkerId;

/// SHA-256 of `token`, as lowercase hex: how join tokens and worker
/// credentials are stored.
pub fn hash_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fewest bytes of a configured secret (`JWT_SECRET`,
/// `WORKER_CLUSTER_TOKEN`, `WORKER_HEARTBEAT_TOKEN`): 256 bits of a random
/// string. Shorter ones are refused at start.
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`], with a message
/// naming `variable` (the environment variable that configures it).
pub fn check_secret_length(variable: &str, secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "{variable} must be at least {MIN_SECRET_BYTES} bytes (got {}); generate one with `head -c 32 /dev/urandom | xxd -p -c 64`",
            secret.len()
        ));
    }
    Ok(())
}

/// Prefix of a worker's own credential: `vdiw.<code>.<secret>`.
pub const WORKER_CREDENTIAL_PREFIX: &str = "vdiw.";

/// A worker's credential from its code and a secret:
/// `vdiw.<code>.<secret>`.
pub fn worker_credential(worker: &WorkerId, secret: &str) -> String {
    format!("{WORKER_CREDENTIAL_PREFIX}{worker}.{secret}")
}

/// The worker a credential names, if `presented` has the credential's
/// shape (`vdiw.<code>.<secret>`).
pub fn credential_worker(presented: &str) -> Option<WorkerId> {
    let rest = presented.strip_prefix(WORKER_CREDENTIAL_PREFIX)?;
    let (code, secret) = rest.rsplit_once('.')?;
    if secret.is_empty() {
        return None;
    }
    WorkerId::parse("code", code).ok()
}

/// Whether `presented` hashes to `stored_hex`, in constant time.
pub fn matches_hash_hex(presented: &str, stored_hex: &str) -> bool {
    let digest = hash_hex(presented);
    digest.len() == stored_hex.len() && bool::from(digest.as_bytes().ct_eq(stored_hex.as_bytes()))
}

/// A shared token kept only as its SHA-256 hash.
#[derive(Clone)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes `token`.
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Compares `presented` in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_credentials_name_their_worker() {
        let w = WorkerId::parse("code", "worker-node.2").unwrap();
        let c = worker_credential(&w, "0123abcd");
        assert_eq!(credential_worker(&c), Some(w));
        assert!(matches_hash_hex(&c, &hash_hex(&c)));
        assert!(!matches_hash_hex(&c, &hash_hex("other")));
        assert!(!matches_hash_hex(&c, "short"));
        assert_eq!(credential_worker("vdiw.bad code.x"), None);
        assert_eq!(credential_worker("vdiw.w1."), None);
        assert_eq!(credential_worker("w1.secret"), None);
        assert_eq!(hash_hex("abc").len(), 64);
    }
}
