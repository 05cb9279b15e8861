//! Secrets: random secrets and tokens, workers' own credentials, and the
//! hashes tokens are kept as (from `vdi-cluster-protocol`).

use rand::RngCore;
use vdi_cluster_core::WorkerId;

pub use vdi_cluster_protocol::credentials::{
    TokenHash, WORKER_CREDENTIAL_PREFIX, credential_worker, hash_hex, matches_hash_hex,
};

/// A new credential for `worker`: `vdiw.<code>.<256 random bits, hex>`.
pub fn new_worker_credential(worker: &WorkerId) -> String {
    vdi_cluster_protocol::credentials::worker_credential(worker, &random_secret())
}

/// A random secret (256 bits, hex): for `JWT_SECRET` or a token when none
/// is configured.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
