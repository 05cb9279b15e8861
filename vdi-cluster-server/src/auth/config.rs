//! [`AuthConfig`]: the credentials the server accepts — JWT secret and
//! shared worker token; never the cluster token, which only the control
//! plane presents (to workers) — and the checks of a request's headers that
//! need no store (workers' own credentials are checked by
//! [`gate`](crate::gate), which reads them from the store).

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use vdi_cluster_protocol::{CLUSTER_TOKEN_HEADER, JOIN_TOKEN_HEADER, WORKER_TOKEN_HEADER};

use super::access::{Access, Principal, Role, User};
use super::csrf::CsrfKey;
use super::jwt::JwtVerifier;
use super::secrets::TokenHash;
use crate::error::ApiError;

/// The credentials the server accepts. Closed by default: a fresh
/// `AuthConfig` accepts no credential at all; anonymous heartbeats need
/// [`allow_anonymous_workers`](Self::allow_anonymous_workers).
#[derive(Clone, Default)]
pub struct AuthConfig {
    jwt: Option<JwtVerifier>,
    csrf: Option<CsrfKey>,
    worker_token: Option<TokenHash>,
    anonymous_workers: bool,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt", &self.jwt.is_some())
            .field("worker_token", &self.worker_token.is_some())
            .field("anonymous_workers", &self.anonymous_workers)
            .finish()
    }
}

impl AuthConfig {
    /// Accepts nothing but the public routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts HS256 JWTs signed with `secret`; checks `iss` and `aud` when
    /// given. An empty secret is ignored (no JWT is accepted): anyone could
    /// sign with it.
    pub fn with_jwt_secret(
        mut self,
        secret: &[u8],
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        if secret.is_empty() {
            tracing::warn!("empty JWT secret ignored: no bearer token will be accepted");
            return self;
        }
        self.jwt = Some(JwtVerifier::new(secret, issuer, audience));
        self.csrf = Some(CsrfKey::derive(secret));
        self
    }

    /// Requires `x-worker-token: token` on the worker routes.
    pub fn with_worker_token(mut self, token: &str) -> Self {
        self.worker_token = Some(TokenHash::new(token));
        self
    }

    /// Accepts heartbeats and registrations without `x-worker-token`
    /// (development only: whoever reaches the server can then register a
    /// worker and receive the cluster token with its allocations). A
    /// presented token is still checked, deregistration still needs the
    /// worker's own credential or an admin, and workers that joined still
    /// need their own credential.
    pub fn allow_anonymous_workers(mut self) -> Self {
        self.anonymous_workers = true;
        self
    }

    /// Whether the worker routes require a token.
    pub fn worker_token_required(&self) -> bool {
        !self.anonymous_workers
    }

    /// Whether `presented` is the shared worker token.
    pub fn is_shared_worker_token(&self, presented: &[u8]) -> bool {
        self.worker_token
            .as_ref()
            .is_some_and(|hash| hash.matches(presented))
    }

    fn verify_jwt(&self, token: &str) -> Result<User, ApiError> {
        let Some(jwt) = &self.jwt else {
            return Err(ApiError::unauthorized(
                "bearer tokens are not accepted: no JWT secret is configured",
            ));
        };
        jwt.verify(token)
    }

    /// An operator's JWT checked for a page session: the operator and
    /// the token's `exp` (seconds since the epoch).
    pub fn operator_session(&self, token: &str) -> Result<(User, u64), ApiError> {
        let Some(jwt) = &self.jwt else {
            return Err(ApiError::unauthorized(
                "bearer tokens are not accepted: no JWT secret is configured",
            ));
        };
        let (user, exp) = jwt.verify_until(token)?;
        if !user.is_operator() {
            return Err(ApiError::forbidden(
                "the operators' page needs a JWT with role ADMIN or PROCTOR",
            ));
        }
        Ok((user, exp))
    }

    /// The key of page sessions' CSRF tokens; `None` without a JWT secret
    /// (no session can exist then).
    pub fn csrf_key(&self) -> Option<&CsrfKey> {
        self.csrf.as_ref()
    }

    /// The bearer token of `headers`, if any (a malformed header is a 401).
    pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
        Self::bearer(headers)
    }

    fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        let (scheme, token) = text
            .split_once(' ')
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::unauthorized(
                "expected Authorization: Bearer <token>",
            ));
        }
        Ok(Some(token.trim()))
    }

    /// The JWT user, if a bearer token was presented (an invalid one is a
    /// 401, never ignored); otherwise the page session's operator, if any.
    fn user(&self, headers: &HeaderMap, page: Option<&User>) -> Result<Option<User>, ApiError> {
        match Self::bearer(headers)? {
            Some(token) => self.verify_jwt(token).map(Some),
            None => Ok(page.cloned()),
        }
    }

    /// Checks `headers` against `access`.
    pub fn authorize(&self, access: Access, headers: &HeaderMap) -> Result<Principal, ApiError> {
        self.authorize_with(access, headers, None)
    }

    /// Checks `headers` against `access`, where `page` is the operator of
    /// the operators' page session the request's cookie proved, if any
    /// ([`session`](super::session)): it counts as a bearer with the
    /// session's roles when no `Authorization` header is sent.
    pub fn authorize_with(
        &self,
        access: Access,
        headers: &HeaderMap,
        page: Option<&User>,
    ) -> Result<Principal, ApiError> {
        match access {
            Access::Public => Ok(Principal::Anonymous),
            Access::Worker => match headers.get(WORKER_TOKEN_HEADER) {
                Some(v) if self.is_shared_worker_token(v.as_bytes()) => Ok(Principal::Worker),
                Some(_) => Err(ApiError::unauthorized("invalid x-worker-token")),
                None if self.anonymous_workers => Ok(Principal::Anonymous),
                None => Err(ApiError::unauthorized("x-worker-token is required")),
            },
            Access::OwnWorker => {
                if let Some(user) = self.user(headers, page)? {
                    return if user.roles.contains(&Role::Admin) {
                        Ok(Principal::User(user))
                    } else {
                        Err(ApiError::forbidden(format!(
                            "this endpoint needs {}",
                            access.describe()
                        )))
                    };
                }
                match headers.get(WORKER_TOKEN_HEADER) {
                    Some(v) if self.is_shared_worker_token(v.as_bytes()) => {
                        Err(ApiError::forbidden(
                            "the shared worker token may not do this: send the worker's own credential, or use an ADMIN token",
                        ))
                    }
                    Some(_) => Err(ApiError::unauthorized("invalid x-worker-token")),
                    None => Err(ApiError::unauthorized(format!(
                        "this endpoint needs {}",
                        access.describe()
                    ))),
                }
            }
            Access::Operator | Access::Admin => {
                let Some(user) = self.user(headers, page)? else {
                    return Err(ApiError::unauthorized(
                        "this endpoint needs Authorization: Bearer <JWT>",
                    ));
                };
                let allowed = if access == Access::Admin {
                    user.roles.contains(&Role::Admin)
                } else {
                    user.is_operator()
                };
                if allowed {
                    Ok(Principal::User(user))
                } else {
                    Err(ApiError::forbidden(format!(
                        "this endpoint needs a {}",
                        access.describe().trim_start_matches("Bearer ")
                    )))
                }
            }
            Access::Join => match headers.get(JOIN_TOKEN_HEADER) {
                Some(v) if !v.as_bytes().is_empty() => Ok(Principal::Joining),
                _ => Err(ApiError::unauthorized("x-join-token is required")),
            },
            Access::Session | Access::Service => {
                if headers.contains_key(CLUSTER_TOKEN_HEADER) {
                    // Every worker holds it: it must not open the session API.
                    return Err(ApiError::unauthorized(
                        "x-cluster-token is not accepted here (it is what the control plane sends to workers); the exam application sends a Bearer JWT with role SERVICE",
                    ));
                }
                let user = self.user(headers, page)?;
                match user {
                    Some(u) if u.acts_for_students() => Ok(Principal::User(u)),
                    Some(u) if access == Access::Session && u.roles.contains(&Role::Student) => {
                        Ok(Principal::User(u))
                    }
                    Some(_) => Err(ApiError::forbidden(format!(
                        "this endpoint needs {}",
                        access.describe()
                    ))),
                    None => Err(ApiError::unauthorized(format!(
                        "this endpoint needs {}",
                        access.describe()
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::*;
    use crate::auth::jwt::{mint_jwt, unix_now};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn bearer(token: &str) -> (&'static str, String) {
        ("authorization", format!("Bearer {token}"))
    }

    fn config() -> AuthConfig {
        AuthConfig::new()
            .with_jwt_secret(SECRET, None, None)
            .with_worker_token("w")
    }

    #[test]
    fn page_sessions_are_for_operators_only() {
        let cfg = config();
        let mint = |role| mint_jwt(SECRET, "u", &[role], Duration::from_secs(60), None, None);
        let (user, exp) = cfg.operator_session(&mint(Role::Proctor).unwrap()).unwrap();
        assert_eq!(user.sub, "u");
        assert!(exp > unix_now());
        for role in [Role::Student, Role::Service] {
            let err = cfg.operator_session(&mint(role).unwrap()).unwrap_err();
            assert!(err.to_string().contains("ADMIN or PROCTOR"), "{err}");
        }
        assert!(cfg.operator_session("not.a.jwt").is_err());
        assert!(AuthConfig::new().csrf_key().is_none());
        assert!(cfg.csrf_key().is_some());
    }

    #[test]
    fn roles_from_role_or_roles() {
        let cfg = config();
        let one = mint_jwt(
            SECRET,
            "a",
            &[Role::Admin],
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        let two = mint_jwt(
            SECRET,
            "p",
            &[Role::Student, Role::Proctor],
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        assert!(
            cfg.authorize(Access::Admin, &headers(&[bearer(&one)]))
                .is_ok()
        );
        assert!(
            cfg.authorize(Access::Operator, &headers(&[bearer(&two)]))
                .is_ok()
        );
        let e = cfg
            .authorize(Access::Admin, &headers(&[bearer(&two)]))
            .unwrap_err();
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let cfg = config();
        let claims = format!(r#"{{"sub":"a","exp":{},"role":"ADMIN"}}"#, unix_now() + 600);
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
        let e = cfg
            .authorize(Access::Admin, &headers(&[bearer(&none)]))
            .unwrap_err();
        assert_eq!(e.status(), 401);
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &serde_json::from_str::<serde_json::Value>(&claims).unwrap(),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let e = cfg
            .authorize(Access::Admin, &headers(&[bearer(&hs384)]))
            .unwrap_err();
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn exp_and_sub_are_required() {
        let cfg = config();
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "a", "role": "ADMIN"}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            cfg.authorize(Access::Admin, &headers(&[bearer(&no_exp)]))
                .unwrap_err()
                .status(),
            401
        );
        let no_sub = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"exp": unix_now() + 600, "role": "ADMIN"}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            cfg.authorize(Access::Admin, &headers(&[bearer(&no_sub)]))
                .unwrap_err()
                .status(),
            401
        );
    }

    #[test]
    fn nbf_and_iat_are_checked_with_the_leeway() {
        let cfg = config();
        let now = unix_now();
        let token = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({"sub": "a", "role": "ADMIN", "exp": now + 600});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        let status = |t: &str| {
            cfg.authorize(Access::Admin, &headers(&[bearer(t)]))
                .map(|_| 200)
                .unwrap_or_else(|e| e.status().as_u16())
        };
        assert_eq!(status(&token(serde_json::json!({"nbf": now + 300}))), 401);
        assert_eq!(status(&token(serde_json::json!({"nbf": now + 10}))), 200);
        assert_eq!(status(&token(serde_json::json!({"nbf": now - 10}))), 200);
        assert_eq!(status(&token(serde_json::json!({"iat": now + 300}))), 401);
        assert_eq!(status(&token(serde_json::json!({"iat": now + 10}))), 200);
        assert_eq!(status(&token(serde_json::json!({"iat": now - 3600}))), 200);
        // Minted tokens carry iat.
        let minted = mint_jwt(
            SECRET,
            "a",
            &[Role::Admin],
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        assert_eq!(status(&minted), 200);
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let cfg = AuthConfig::new().with_jwt_secret(SECRET, Some("exam-portal"), Some("vdi"));
        let ttl = Duration::from_secs(60);
        let good = mint_jwt(
            SECRET,
            "a",
            &[Role::Admin],
            ttl,
            Some("exam-portal"),
            Some("vdi"),
        )
        .unwrap();
        let bad_iss =
            mint_jwt(SECRET, "a", &[Role::Admin], ttl, Some("other"), Some("vdi")).unwrap();
        let no_aud = mint_jwt(SECRET, "a", &[Role::Admin], ttl, Some("exam-portal"), None).unwrap();
        assert!(
            cfg.authorize(Access::Admin, &headers(&[bearer(&good)]))
                .is_ok()
        );
        assert!(
            cfg.authorize(Access::Admin, &headers(&[bearer(&bad_iss)]))
                .is_err()
        );
        assert!(
            cfg.authorize(Access::Admin, &headers(&[bearer(&no_aud)]))
                .is_err()
        );
    }

    #[test]
    fn tokens_compare_by_hash() {
        let cfg = config();
        assert_eq!(
            cfg.authorize(Access::Worker, &headers(&[("x-worker-token", "w".into())]))
                .unwrap(),
            Principal::Worker
        );
        assert!(
            cfg.authorize(Access::Worker, &headers(&[("x-worker-token", "x".into())]))
                .is_err()
        );
        // The cluster token opens nothing here, whatever its value.
        for access in [Access::Service, Access::Session] {
            let e = cfg
                .authorize(access, &headers(&[("x-cluster-token", "c".into())]))
                .unwrap_err();
            assert_eq!(e.status(), 401);
        }
        let service = mint_jwt(
            SECRET,
            "exam-app",
            &[Role::Service],
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        for access in [Access::Service, Access::Session] {
            assert!(cfg.authorize(access, &headers(&[bearer(&service)])).is_ok());
        }
        for access in [Access::Operator, Access::Admin, Access::OwnWorker] {
            let e = cfg
                .authorize(access, &headers(&[bearer(&service)]))
                .unwrap_err();
            assert_eq!(e.status(), 403, "{access:?}");
        }
        // An empty secret accepts nothing.
        let empty = AuthConfig::new().with_jwt_secret(b"", None, None);
        let forged = mint_jwt(
            b"",
            "a",
            &[Role::Admin],
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        assert!(
            empty
                .authorize(Access::Admin, &headers(&[bearer(&forged)]))
                .is_err()
        );
        // Closed by default.
        let closed = AuthConfig::new();
        assert!(
            closed
                .authorize(
                    Access::Session,
                    &headers(&[("x-cluster-token", "c".into())])
                )
                .is_err()
        );
        assert_eq!(
            closed
                .authorize(Access::Worker, &HeaderMap::new())
                .unwrap_err()
                .status(),
            401
        );
        let open = AuthConfig::new().allow_anonymous_workers();
        assert_eq!(
            open.authorize(Access::Worker, &HeaderMap::new()).unwrap(),
            Principal::Anonymous
        );
        for cfg in [&open, &config()] {
            assert!(cfg.authorize(Access::OwnWorker, &HeaderMap::new()).is_err());
        }
        let shared = config()
            .authorize(
                Access::OwnWorker,
                &headers(&[("x-worker-token", "w".into())]),
            )
            .unwrap_err();
        assert_eq!(shared.status(), 403);
    }
}
