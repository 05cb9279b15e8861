//! The operators' page signs in once with an ADMIN or PROCTOR JWT; the
//! sign-in route keeps that JWT in a cookie (`HttpOnly`, so no script can
//! read it; `SameSite=Strict`, so no other site's page sends it; `Path=/api/`)
//! and answers a CSRF token. From then on [`cookie_credential`] lets the
//! cookie stand for `Authorization: Bearer <JWT>` — the route's
//! [`Access`](super::Access) and the gate decide as for any bearer — when:
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
//! The CSRF token is an HMAC-SHA256 of the JWT under a
//! [`CsrfKey`](super::CsrfKey) derived from `JWT_SECRET`. It opens nothing
//! without the cookie, so the events stream's URL carries no credential.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vdi_cluster_protocol::signin::{CSRF_TOKEN_HEADER, CSRF_TOKEN_QUERY, SESSION_COOKIE};

use super::config::AuthConfig;
use crate::error::ApiError;

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

/// The CSRF token a read presents in its query string (`?csrf=…`): what
/// the events stream sends, since `EventSource` cannot set a header.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| {
        pair.strip_prefix(CSRF_TOKEN_QUERY)
            .and_then(|v| v.strip_prefix('='))
    })
}

/// The bearer credential the session cookie stands for in a request with
/// `method`, `query` and `headers`, if any: `Ok(None)` leaves the request
/// as it is; a change without the right CSRF token is a 403. The rules are
/// the [module docs](self)'.
pub fn cookie_bearer(
    auth: &AuthConfig,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, ApiError> {
    if headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    let (Some(jwt), Some(key)) = (session_cookie(headers), auth.csrf_key()) else {
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
    let proven = presented.is_some_and(|token| key.csrf_matches(jwt, token));
    let same_origin_read = !change && fetch_site == Some(b"same-origin".as_slice());
    if !proven && !same_origin_read {
        if change {
            return Err(ApiError::forbidden(format!(
                "a change made with the session cookie needs the session's {CSRF_TOKEN_HEADER} header"
            )));
        }
        return Ok(None);
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
    match cookie_bearer(&auth, req.method(), req.uri().query(), req.headers()) {
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

    const COOKIE: (&str, &str) = ("cookie", "vdi_operator_session=j.w.t");
    const SAME: (&str, &str) = ("sec-fetch-site", "same-origin");

    fn token() -> String {
        auth().csrf_key().unwrap().csrf_token("j.w.t")
    }

    fn bearer(method: Method, query: Option<&str>, h: &[(&'static str, &str)]) -> Option<String> {
        cookie_bearer(&auth(), &method, query, &headers(h))
            .unwrap()
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_same_origin_read_needs_no_token() {
        let want = Some("Bearer j.w.t".to_owned());
        assert_eq!(bearer(Method::GET, None, &[COOKIE, SAME]), want);
        for other in ["cross-site", "same-site", "none"] {
            let site = ("sec-fetch-site", other);
            assert_eq!(bearer(Method::GET, None, &[COOKIE, site]), None);
            // Not even with the token: the browser says another site sent it.
            let token = token();
            let proof = ("x-csrf-token", token.as_str());
            assert_eq!(bearer(Method::GET, None, &[COOKIE, site, proof]), None);
        }
    }

    #[test]
    fn without_fetch_metadata_the_token_is_the_proof() {
        // A tool that keeps cookies: the cookie does not count.
        assert_eq!(bearer(Method::GET, None, &[COOKIE]), None);
        // Plain HTTP, where browsers send no Sec-Fetch-Site: the token does.
        let token = token();
        let want = Some("Bearer j.w.t".to_owned());
        assert_eq!(
            bearer(Method::GET, None, &[COOKIE, ("x-csrf-token", &token)]),
            want
        );
        let query = format!("a=1&csrf={token}");
        assert_eq!(bearer(Method::GET, Some(&query), &[COOKIE]), want);
        assert_eq!(bearer(Method::GET, Some("csrf=00"), &[COOKIE]), None);
        // A change never takes the token from the query string.
        let err = cookie_bearer(&auth(), &Method::POST, Some(&query), &headers(&[COOKIE]));
        assert!(err.is_err());
    }

    #[test]
    fn explicit_credentials_win_and_no_secret_means_no_session() {
        let explicit = headers(&[COOKIE, SAME, ("authorization", "Bearer other")]);
        assert_eq!(
            cookie_bearer(&auth(), &Method::GET, None, &explicit).unwrap(),
            None
        );
        let h = headers(&[COOKIE, SAME]);
        assert_eq!(
            cookie_bearer(&AuthConfig::new(), &Method::GET, None, &h).unwrap(),
            None
        );
    }

    #[test]
    fn changes_need_the_csrf_token() {
        let token = token();
        for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            for site in [&[COOKIE, SAME][..], &[COOKIE][..]] {
                let err = cookie_bearer(&auth(), &method, None, &headers(site)).unwrap_err();
                assert!(err.to_string().contains("x-csrf-token"), "{err}");
                let mut wrong = site.to_vec();
                wrong.push(("x-csrf-token", "00"));
                assert!(cookie_bearer(&auth(), &method, None, &headers(&wrong)).is_err());
                let mut right = site.to_vec();
                right.push(("x-csrf-token", &token));
                assert!(bearer(method.clone(), None, &right).is_some());
            }
        }
    }
}
