//! The operators' page signs in once with an ADMIN or PROCTOR JWT; the
//! sign-in route keeps that JWT in a cookie (`HttpOnly`, so no script can
//! read it; `SameSite=Strict`, so no other site's page sends it; `Path=/api/`)
//! and answers a CSRF token. From then on [`cookie_credential`] lets the
//! cookie stand for `Authorization: Bearer <JWT>` — the route's
//! [`Access`](super::Access) and the gate decide as for any bearer — when:
//!
//! * the request carries no `Authorization` header of its own (an explicit
//!   credential always wins);
//! * the browser says it comes from the page's own origin
//!   (`Sec-Fetch-Site: same-origin`): the cookie is ignored otherwise, so
//!   no tool that keeps cookies is ever authenticated by one by accident;
//! * a change (any method but `GET`, `HEAD`, `OPTIONS`) carries the
//!   session's CSRF token in `x-csrf-token` — else 403.
//!
//! The CSRF token is an HMAC-SHA256 of the JWT under a key derived from
//! `JWT_SECRET`: replicas sharing the secret agree on it, nothing is
//! stored, and it changes with the session. The events stream needs no
//! token in its URL: the browser sends the cookie.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use vdi_cluster_protocol::signin::{CSRF_TOKEN_HEADER, SESSION_COOKIE};

use super::config::AuthConfig;
use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

/// What the CSRF key is derived for (changing it ends every page session's
/// CSRF token).
const CSRF_KEY_LABEL: &[u8] = b"vdi-cluster operators' page: CSRF tokens, v1";

/// The key of page sessions' CSRF tokens, derived from the JWT secret.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; 32],
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
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

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` keeping `jwt` for `max_age_secs`; `Secure` when the page
/// was reached over HTTPS.
pub fn set_cookie(jwt: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={jwt}; Path=/api/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// `Set-Cookie` ending the session.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

/// Whether the request reached the server over HTTPS, as far as it can
/// tell: a proxy's `X-Forwarded-Proto: https`. (Claiming it falsely only
/// makes the cookie stricter.)
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The bearer credential the session cookie stands for in `headers`, if
/// any: `Ok(None)` leaves the request as it is; a change without the
/// right CSRF token is a 403.
pub fn cookie_bearer(
    auth: &AuthConfig,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let (Some(jwt), Some(key)) = (session_cookie(headers), auth.session_key()) else {
        return Ok(None);
    };
    let same_origin = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin");
    if !same_origin {
        return Ok(None);
    }
    if is_change(method) {
        let presented = headers
            .get(CSRF_TOKEN_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if !key.csrf_matches(jwt, presented) {
            return Err(ApiError::forbidden(format!(
                "a change made with the session cookie needs the session's {CSRF_TOKEN_HEADER} header"
            )));
        }
    }
    HeaderValue::try_from(format!("Bearer {jwt}"))
        .map(Some)
        .map_err(|_| ApiError::unauthorized("malformed session cookie"))
}

/// The layer in front of every route: lets the session cookie stand for
/// `Authorization: Bearer` (see the [module docs](self)).
pub async fn cookie_credential(
    State(auth): State<AuthConfig>,
    mut req: Request,
    next: Next,
) -> Response {
    match cookie_bearer(&auth, req.method(), req.headers()) {
        Ok(Some(bearer)) => {
            req.headers_mut().insert(AUTHORIZATION, bearer);
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn auth() -> AuthConfig {
        AuthConfig::new().with_jwt_secret(SECRET, None, None)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_secret() {
        let key = SessionKey::derive(SECRET);
        let token = key.csrf_token("a.b.c");
        assert_eq!(token.len(), 64);
        assert!(key.csrf_matches("a.b.c", token.as_bytes()));
        assert!(!key.csrf_matches("a.b.d", token.as_bytes()));
        assert!(!key.csrf_matches("a.b.c", b""));
        let other = SessionKey::derive(b"another secret, also long enough!!");
        assert_ne!(other.csrf_token("a.b.c"), token);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; vdi_operator_session=x.y.z; b=2")]);
        assert_eq!(session_cookie(&h), Some("x.y.z"));
        let h = headers(&[("cookie", "a=1"), ("cookie", "vdi_operator_session=q")]);
        assert_eq!(session_cookie(&h), Some("q"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "vdi_operator_session=")])),
            None
        );
    }

    #[test]
    fn cookies_are_strict() {
        let c = set_cookie("j", 60, false);
        assert_eq!(
            c,
            "vdi_operator_session=j; Path=/api/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(clear_cookie(true).ends_with("Max-Age=0; HttpOnly; SameSite=Strict; Secure"));
    }

    #[test]
    fn the_cookie_stands_for_a_bearer_only_from_the_same_origin() {
        let auth = auth();
        let cookie = ("cookie", "vdi_operator_session=j.w.t");
        let same = ("sec-fetch-site", "same-origin");
        let got = cookie_bearer(&auth, &Method::GET, &headers(&[cookie, same])).unwrap();
        assert_eq!(got.unwrap(), "Bearer j.w.t");
        for other in ["cross-site", "same-site", "none"] {
            let h = headers(&[cookie, ("sec-fetch-site", other)]);
            assert_eq!(cookie_bearer(&auth, &Method::GET, &h).unwrap(), None);
        }
        assert_eq!(
            cookie_bearer(&auth, &Method::GET, &headers(&[cookie])).unwrap(),
            None
        );
        let explicit = headers(&[cookie, same, ("authorization", "Bearer other")]);
        assert_eq!(cookie_bearer(&auth, &Method::GET, &explicit).unwrap(), None);
        // Without a JWT secret there is no session.
        let h = headers(&[cookie, same]);
        assert_eq!(
            cookie_bearer(&AuthConfig::new(), &Method::GET, &h).unwrap(),
            None
        );
    }

    #[test]
    fn changes_need_the_csrf_token() {
        let auth = auth();
        let token = auth.session_key().unwrap().csrf_token("j.w.t");
        let cookie = ("cookie", "vdi_operator_session=j.w.t");
        let same = ("sec-fetch-site", "same-origin");
        for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            let err = cookie_bearer(&auth, &method, &headers(&[cookie, same])).unwrap_err();
            assert!(err.to_string().contains("x-csrf-token"), "{err}");
            let wrong = headers(&[cookie, same, ("x-csrf-token", "00")]);
            assert!(cookie_bearer(&auth, &method, &wrong).is_err());
            let right = headers(&[cookie, same, ("x-csrf-token", &token)]);
            assert!(cookie_bearer(&auth, &method, &right).unwrap().is_some());
        }
    }
}
