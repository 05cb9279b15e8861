//! Operators' page → control plane: signing in with a JWT, exchanged for a
//! session cookie, and the CSRF token that cookie-authenticated changes
//! carry.
//!
//! | method | path | credential | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/auth/session` | `Authorization: Bearer <JWT>` (ADMIN or PROCTOR) | [`OperatorSessionJson`], sets [`SESSION_COOKIE`] |
//! | `GET` | `/api/vdi/auth/session` | the cookie | [`OperatorSessionJson`] |
//! | `DELETE` | `/api/vdi/auth/session` | — | `204`, ends the session, clears the cookie |
//! | `DELETE` | `/api/vdi/auth/sessions` | ADMIN | [`SessionsEndedJson`]: every page session ended |
//!
//! A request authenticated by the cookie carries the session's CSRF token
//! in [`CSRF_TOKEN_HEADER`] (or, on a read that cannot set a header, in
//! the [`CSRF_TOKEN_QUERY`] parameter); a change without it is refused.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The cookie holding an operator's session (HttpOnly, `SameSite=Strict`).
pub const SESSION_COOKIE: &str = "vdi_operator_session";

/// The header carrying the session's CSRF token on cookie-authenticated
/// requests.
pub const CSRF_TOKEN_HEADER: &str = "x-csrf-token";

/// The query parameter carrying the session's CSRF token on a
/// cookie-authenticated read that cannot set a header (the events stream).
pub const CSRF_TOKEN_QUERY: &str = "csrf";

/// The signed-in operator, as the page reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSessionJson {
    /// The JWT's `sub`: the actor of the audit trail.
    pub sub: String,
    /// The operator roles of the JWT (`ADMIN`, `PROCTOR`).
    pub roles: Vec<String>,
    /// What cookie-authenticated changes send in `x-csrf-token` (empty
    /// when the request was authenticated by a bearer JWT, not a session).
    pub csrf_token: String,
    /// When the session ends (the JWT's `exp`), milliseconds since the Unix
    /// epoch.
    pub expires_at: u64,
}

/// Answer of "sign out everywhere": how many operators' page sessions
/// were ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionsEndedJson {
    /// Sessions ended (every one stored, the caller's included).
    pub ended: u64,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_names() {
        let body = OperatorSessionJson {
            sub: "op".into(),
            roles: vec!["PROCTOR".into()],
            csrf_token: "abc".into(),
            expires_at: 5,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"sub": "op", "roles": ["PROCTOR"], "csrfToken": "abc", "expiresAt": 5})
        );
    }
}
