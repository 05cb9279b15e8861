//! Operators' page sessions: who signed in, with which roles, until when.
//!
//! The page's cookie holds an opaque random id; the store keeps the
//! session under the SHA-256 of that id (never the id itself), so every
//! replica sharing the backend honours a sign-out, and an ADMIN can end
//! every session at once
//! ([`Credentials::end_operator_sessions`](crate::store::Credentials::end_operator_sessions)).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// One signed-in operator, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSession {
    /// The operator (the JWT's `sub` at sign-in).
    pub sub: String,
    /// The operator's roles at sign-in (`ADMIN`, `PROCTOR`).
    pub roles: Vec<String>,
    /// When the operator signed in.
    pub created_at: Timestamp,
    /// After this instant the session is over.
    pub expires_at: Timestamp,
}

impl OperatorSession {
    /// Whether the session still stands at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_at_its_expiry() {
        let s = OperatorSession {
            sub: "ops".into(),
            roles: vec!["ADMIN".into()],
            created_at: Timestamp(1_000),
            expires_at: Timestamp(2_000),
        };
        assert!(s.is_live(Timestamp(1_999)));
        assert!(!s.is_live(Timestamp(2_000)));
    }
}
