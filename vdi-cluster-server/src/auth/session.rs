//! The operators' page signs in once with an ADMIN or PROCTOR JWT; the
//! sign-in route stores a session in the backend (who, which roles, until
//! the JWT's `exp`) under the hash of a new random id, keeps that id in a
//! cookie (`HttpOnly`, so no script can read it; `SameSite=Strict`, so no
//! other site's page sends it; `Path=/api/`) and answers a CSRF token. The
//! cookie never holds a credential that works anywhere else, and a
//! sign-out deletes the stored session, so every replica honours it.
//!
//! From then on [`cookie_proof`] says when the cookie may stand for the
//! stored session's operator — the route's [`Access`](super::Access) and
//! the gate decide as for a bearer with those roles:
//!
//! * the request carries no `Authorization` header of its own (an explicit
//!   credential always wins);
//! * the browser does not say it comes from another site
//!   (`Sec-Fetch-Site`, when sent, is `same-origin`);
//! * and the request proves it comes from the page: it carries the
//!   session's CSRF token (`x-csrf-token`, or on a read `?csrf=`, which
//!   the events stream uses since `EventSource` sets no header), or it is
//!   a read the browser marks `Sec-Fetch-Site: same-origin` (how the page,
//!   once reloaded, gets its token back).
//!
//! A change (any method but `GET`, `HEAD`, `OPTIONS`) with the cookie and
//! without the right token is refused (403); any other request without the
//! proof is left as if it had no cookie, so a tool that keeps cookies is
//! never authenticated by one by accident. Browsers send `Sec-Fetch-Site`
//! only to secure origins (HTTPS, localhost): over plain HTTP elsewhere
//! the page relies on the token alone.
//!
//! The CSRF token is an HMAC-SHA256 of the session's id under a
//! [`CsrfKey`](super::CsrfKey) derived from `JWT_SECRET`. It opens nothing
//! without the cookie, so the events stream's URL carries no credential.
//! The store lookup is [`page_session`](crate::page_session)'s.

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};
use vdi_cluster_protocol::signin::{CSRF_TOKEN_HEADER, CSRF_TOKEN_QUERY, SESSION_COOKIE};

use super::access::User;
use super::config::AuthConfig;
use super::secrets::hash_hex;
use crate::error::ApiError;

/// A page session the cookie proved, found live in the store: put in the
/// request's extensions for the gate and the sign-in routes.
#[derive(Debug, Clone)]
pub struct PageSession {
    /// The SHA-256 (hex) of the cookie's id: the session's key in the store.
    pub id_hash: String,
    /// The CSRF token of the session.
    pub csrf_token: String,
    /// The operator and the roles stored at sign-in.
    pub user: User,
    /// When the session ends, milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// The store key of the session whose cookie holds `id`.
pub fn session_key(id: &str) -> String {
    hash_hex(id)
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

/// `Set-Cookie` keeping the session id `id` for `max_age_secs`; `Secure`
/// when the page was reached over HTTPS.
pub fn set_cookie(id: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={id}; Path=/api/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
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

/// The CSRF token a read presents in its query string (`?csrf=…`): what
/// the events stream sends, since `EventSource` cannot set a header.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| {
        pair.strip_prefix(CSRF_TOKEN_QUERY)
            .and_then(|v| v.strip_prefix('='))
    })
}

/// The session id of the cookie in a request with `method`, `query` and
/// `headers`, when the request proves it comes from the page: `Ok(None)`
/// leaves the request as it is; a change without the right CSRF token is a
/// 403. The rules are the [module docs](self)'. Whether the id names a
/// live session is the store's to say.
pub fn cookie_proof<'h>(
    auth: &AuthConfig,
    method: &Method,
    query: Option<&str>,
    headers: &'h HeaderMap,
) -> Result<Option<&'h str>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let (Some(id), Some(key)) = (session_cookie(headers), auth.csrf_key()) else {
        return Ok(None);
    };
    let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    if fetch_site.is_some_and(|site| site != b"same-origin") {
        return Ok(None);
    }
    let change = is_change(method);
    let presented = match headers.get(CSRF_TOKEN_HEADER) {
        Some(value) => Some(value.as_bytes()),
        None if !change => query_token(query).map(str::as_bytes),
        None => None,
    };
    let proven = presented.is_some_and(|token| key.csrf_matches(id, token));
    let same_origin_read = !change && fetch_site == Some(b"same-origin".as_slice());
    if !proven && !same_origin_read {
        if change {
            return Err(ApiError::forbidden(format!(
                "a change made with the session cookie needs the session's {CSRF_TOKEN_HEADER} header"
            )));
        }
        return Ok(None);
    }
    Ok(Some(id))
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

    const COOKIE: (&str, &str) = ("cookie", "vdi_operator_session=s1d");
    const SAME: (&str, &str) = ("sec-fetch-site", "same-origin");

    fn token() -> String {
        auth().csrf_key().unwrap().csrf_token("s1d")
    }

    fn proof(
        auth: &AuthConfig,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<String>, ApiError> {
        cookie_proof(auth, method, query, headers).map(|id| id.map(str::to_owned))
    }

    fn proven(method: Method, query: Option<&str>, h: &[(&'static str, &str)]) -> Option<String> {
        proof(&auth(), &method, query, &headers(h)).unwrap()
    }

    #[test]
    fn a_same_origin_read_needs_no_token() {
        let want = Some("s1d".to_owned());
        assert_eq!(proven(Method::GET, None, &[COOKIE, SAME]), want);
        for other in ["cross-site", "same-site", "none"] {
            let site = ("sec-fetch-site", other);
            assert_eq!(proven(Method::GET, None, &[COOKIE, site]), None);
            // Not even with the token: the browser says another site sent it.
            let token = token();
            let proof = ("x-csrf-token", token.as_str());
            assert_eq!(proven(Method::GET, None, &[COOKIE, site, proof]), None);
        }
    }

    #[test]
    fn without_fetch_metadata_the_token_is_the_proof() {
        // A tool that keeps cookies: the cookie does not count.
        assert_eq!(proven(Method::GET, None, &[COOKIE]), None);
        // Plain HTTP, where browsers send no Sec-Fetch-Site: the token does.
        let token = token();
        let want = Some("s1d".to_owned());
        assert_eq!(
            proven(Method::GET, None, &[COOKIE, ("x-csrf-token", &token)]),
            want
        );
        let query = format!("a=1&csrf={token}");
        assert_eq!(proven(Method::GET, Some(&query), &[COOKIE]), want);
        assert_eq!(proven(Method::GET, Some("csrf=00"), &[COOKIE]), None);
        // A change never takes the token from the query string.
        let err = proof(&auth(), &Method::POST, Some(&query), &headers(&[COOKIE]));
        assert!(err.is_err());
    }

    #[test]
    fn explicit_credentials_win_and_no_secret_means_no_session() {
        let explicit = headers(&[COOKIE, SAME, ("authorization", "Bearer other")]);
        assert_eq!(proof(&auth(), &Method::GET, None, &explicit).unwrap(), None);
        let h = headers(&[COOKIE, SAME]);
        assert_eq!(
            proof(&AuthConfig::new(), &Method::GET, None, &h).unwrap(),
            None
        );
    }

    #[test]
    fn changes_need_the_csrf_token() {
        let token = token();
        for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            for site in [&[COOKIE, SAME][..], &[COOKIE][..]] {
                let err = proof(&auth(), &method, None, &headers(site)).unwrap_err();
                assert!(err.to_string().contains("x-csrf-token"), "{err}");
                let mut wrong = site.to_vec();
                wrong.push(("x-csrf-token", "00"));
                assert!(proof(&auth(), &method, None, &headers(&wrong)).is_err());
                let mut right = site.to_vec();
                right.push(("x-csrf-token", &token));
                assert!(proven(method.clone(), None, &right).is_some());
            }
        }
    }
}
