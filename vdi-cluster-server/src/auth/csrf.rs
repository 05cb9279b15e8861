//! The key of the operators' page's CSRF tokens.
//!
//! A page session's CSRF token is an HMAC-SHA256 of its JWT under a
//! [`CsrfKey`], itself derived from `JWT_SECRET`: replicas sharing the
//! secret agree on it, nothing is stored, and it changes with the session.
//! How the token is asked for is [`session`](super::session)'s.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// What the CSRF key is derived for (changing it ends every page session's
/// CSRF token).
const CSRF_KEY_LABEL: &[u8] = b"vdi-cluster operators' page: CSRF tokens, v1";

/// The key of page sessions' CSRF tokens, derived from the JWT secret.
#[derive(Clone)]
pub struct CsrfKey {
    key: [u8; 32],
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// The key for `jwt_secret`: HMAC-SHA256 of a fixed label under it.
    pub(crate) fn derive(jwt_secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(jwt_secret).expect("HMAC takes keys of any size");
        mac.update(CSRF_KEY_LABEL);
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// The CSRF token of the session holding `jwt` (64 hex digits).
    pub fn csrf_token(&self, jwt: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(jwt.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `presented` is the CSRF token of `jwt` (constant time).
    pub fn csrf_matches(&self, jwt: &str, presented: &[u8]) -> bool {
        self.csrf_token(jwt).as_bytes().ct_eq(presented).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_secret() {
        let key = CsrfKey::derive(SECRET);
        let token = key.csrf_token("a.b.c");
        assert_eq!(token.len(), 64);
        assert!(key.csrf_matches("a.b.c", token.as_bytes()));
        assert!(!key.csrf_matches("a.b.d", token.as_bytes()));
        assert!(!key.csrf_matches("a.b.c", b""));
        let other = CsrfKey::derive(b"another secret, also long enough!!");
        assert_ne!(other.csrf_token("a.b.c"), token);
    }
}
