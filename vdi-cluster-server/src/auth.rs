//! Who may call what.
//!
//! Three credentials:
//!
//! * **Bearer JWT** — `Authorization: Bearer <JWT>`, HS256 with `JWT_SECRET`
//!   and no other algorithm (`alg: none`, HS384, RS256… are refused),
//!   `sub` and `exp` required and `exp` enforced, the role in `role` (a
//!   string) or `roles` (an array) with values `ADMIN`, `PROCTOR`,
//!   `STUDENT`; `iss` and `aud` are checked when configured.
//! * **Worker token** — `x-worker-token`, required on heartbeats and
//!   registration when `WORKER_HEARTBEAT_TOKEN` is set (seed 000: "nếu cấu
//!   hình"); without it those routes are open.
//! * **Worker credential** — `x-worker-token: vdiw.<code>.<secret>`, a
//!   worker's own credential received by joining with a join token (seeds
//!   002/003); stored as a hash in the backend, valid only for that worker's
//!   own heartbeats, registration and deregistration. Once a worker has
//!   one, anonymous heartbeats for its code are refused.
//! * **Join token** — `x-join-token`, created by an admin
//!   (`POST /api/vdi/join-tokens`, shown once, stored hashed, with an expiry
//!   and a number of uses); checked by the join route itself.
//! * **Cluster token** — `x-cluster-token` (`WORKER_CLUSTER_TOKEN`), the
//!   service credential of the exam application on the session API.
//!
//! Tokens are kept only as SHA-256 hashes and compared in constant time.
//! Without a JWT secret no JWT is accepted; without a cluster token no
//! cluster token is: nothing but the worker routes is open by default (the
//! `serve` command generates both secrets when they are not configured and
//! prints a ready ADMIN token once).
//!
//! Every route declares an [`Access`] in the
//! [route table](crate::routes::route_table); a per-route middleware checks
//! it before the body is read and hands the handler a [`Principal`].

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use vdi_cluster_core::{UserId, WorkerId};

use crate::error::ApiError;
use crate::state::AppState;
use vdi_cluster_protocol::{
    CLUSTER_TOKEN_HEADER, HEARTBEAT_PATH, JOIN_TOKEN_HEADER, WORKER_TOKEN_HEADER,
};

/// Clock skew tolerated on `exp`, in seconds.
pub const JWT_LEEWAY_SECS: u64 = 30;

/// A role carried by a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Operators with every right.
    Admin,
    /// Exam supervisors: may watch and operate workers (seed 000).
    Proctor,
    /// A student: may touch only their own session.
    Student,
}

impl Role {
    /// The claim value (`ADMIN`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Proctor => "PROCTOR",
            Self::Student => "STUDENT",
        }
    }

    /// Parses a claim value, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Admin, Self::Proctor, Self::Student]
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The credential a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone (`/healthz`, `/readyz`, `/metrics`, the OpenAPI document).
    Public,
    /// `x-worker-token` when `WORKER_HEARTBEAT_TOKEN` is set, else anyone.
    Worker,
    /// An `ADMIN` or `PROCTOR` JWT.
    Operator,
    /// An `ADMIN` JWT.
    Admin,
    /// The cluster token, an `ADMIN`/`PROCTOR` JWT, or a `STUDENT` JWT
    /// whose `sub` is the session's `userId`.
    Session,
    /// The cluster token or an `ADMIN`/`PROCTOR` JWT.
    Service,
    /// A join token in `x-join-token` (checked, and counted, by the route).
    Join,
}

impl Access {
    /// A sentence for documentation.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Public => "no credential",
            Self::Worker => {
                "x-worker-token: the worker's own credential, or WORKER_HEARTBEAT_TOKEN (required when set)"
            }
            Self::Operator => "Bearer JWT with role ADMIN or PROCTOR",
            Self::Admin => "Bearer JWT with role ADMIN",
            Self::Session => {
                "x-cluster-token, or Bearer JWT with role ADMIN or PROCTOR, or role STUDENT for its own userId"
            }
            Self::Service => "x-cluster-token, or Bearer JWT with role ADMIN or PROCTOR",
            Self::Join => "x-join-token (a join token created by an admin)",
        }
    }
}

/// A verified JWT's subject and roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `sub`.
    pub sub: String,
    /// Recognised roles from `role` and `roles`.
    pub roles: BTreeSet<Role>,
}

impl User {
    /// Whether the user is an operator (`ADMIN` or `PROCTOR`).
    pub fn is_operator(&self) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&Role::Proctor)
    }
}

/// Who is calling, once the route's [`Access`] is satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A public route, or a worker route with no worker token configured.
    Anonymous,
    /// Presented the shared worker token.
    Worker,
    /// Presented the own credential of this worker.
    WorkerNode(WorkerId),
    /// Presented a join token (not yet checked).
    Joining,
    /// Presented the cluster token.
    ClusterService,
    /// Presented a valid JWT.
    User(User),
}

impl Principal {
    /// The actor recorded in the audit trail: the JWT `sub`, or the kind of
    /// credential.
    pub fn actor(&self) -> String {
        match self {
            Self::Anonymous => "anonymous".into(),
            Self::Worker => "worker-token".into(),
            Self::WorkerNode(code) => format!("worker:{code}"),
            Self::Joining => "join-token".into(),
            Self::ClusterService => "cluster-token".into(),
            Self::User(u) => u.sub.clone(),
        }
    }

    /// Refuses a `STUDENT`-only caller acting on another student's session.
    pub fn ensure_may_act_for(&self, user: &UserId) -> Result<(), ApiError> {
        match self {
            Self::ClusterService => Ok(()),
            Self::User(u) if u.is_operator() => Ok(()),
            Self::User(u) if u.roles.contains(&Role::Student) && u.sub == user.as_str() => Ok(()),
            Self::User(_) => Err(ApiError::forbidden(
                "a STUDENT token may act only on its own userId",
            )),
            Self::Anonymous | Self::Worker | Self::WorkerNode(_) | Self::Joining => Err(
                ApiError::forbidden("this credential may not act on sessions"),
            ),
        }
    }
}

pub use vdi_cluster_protocol::credentials::{
    TokenHash, WORKER_CREDENTIAL_PREFIX, credential_worker, hash_hex, matches_hash_hex,
};

/// A new credential for `worker`: `vdiw.<code>.<256 random bits, hex>`.
pub fn new_worker_credential(worker: &WorkerId) -> String {
    vdi_cluster_protocol::credentials::worker_credential(worker, &random_secret())
}

#[derive(Clone)]
struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// The credentials the server accepts. Closed by default: a fresh
/// `AuthConfig` accepts no JWT and no cluster token, and leaves only the
/// worker routes open.
#[derive(Clone, Default)]
pub struct AuthConfig {
    jwt: Option<JwtVerifier>,
    worker_token: Option<TokenHash>,
    cluster_token: Option<TokenHash>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt", &self.jwt.is_some())
            .field("worker_token", &self.worker_token.is_some())
            .field("cluster_token", &self.cluster_token.is_some())
            .finish()
    }
}

/// Claims of the tokens this server reads and mints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user id (audited as the actor).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// One role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Several roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// A token could not be minted.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct MintError(#[from] jsonwebtoken::errors::Error);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs an HS256 token for `sub` with `roles`, valid for `ttl`.
pub fn mint_jwt(
    secret: &[u8],
    sub: &str,
    roles: &[Role],
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, MintError> {
    let claims = Claims {
        sub: sub.to_owned(),
        exp: unix_now().saturating_add(ttl.as_secs()),
        role: (roles.len() == 1).then(|| roles[0].name().to_owned()),
        roles: (roles.len() != 1).then(|| roles.iter().map(|r| r.name().to_owned()).collect()),
        iss: issuer.map(str::to_owned),
        aud: audience.map(str::to_owned),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// A random secret (256 bits, hex): for `JWT_SECRET` or a token when none
/// is configured.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuthConfig {
    /// Accepts nothing but the worker routes (open while no worker token is
    /// set).
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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_exp = true;
        validation.leeway = JWT_LEEWAY_SECS;
        match issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        self.jwt = Some(JwtVerifier {
            key: DecodingKey::from_secret(secret),
            validation,
        });
        self
    }

    /// Requires `x-worker-token: token` on the worker routes.
    pub fn with_worker_token(mut self, token: &str) -> Self {
        self.worker_token = Some(TokenHash::new(token));
        self
    }

    /// Accepts `x-cluster-token: token` on the session API.
    pub fn with_cluster_token(mut self, token: &str) -> Self {
        self.cluster_token = Some(TokenHash::new(token));
        self
    }

    /// Whether the worker routes require a token.
    pub fn worker_token_required(&self) -> bool {
        self.worker_token.is_some()
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
        let data = jsonwebtoken::decode::<Claims>(token, &jwt.key, &jwt.validation)
            .map_err(|e| ApiError::unauthorized(format!("invalid bearer token: {e}")))?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(ApiError::unauthorized("invalid bearer token: empty sub"));
        }
        let roles = claims
            .role
            .iter()
            .chain(claims.roles.iter().flatten())
            .filter_map(|r| Role::parse(r))
            .collect();
        Ok(User {
            sub: claims.sub,
            roles,
        })
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
    /// 401, never ignored).
    fn user(&self, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
        Self::bearer(headers)?
            .map(|t| self.verify_jwt(t))
            .transpose()
    }

    /// Whether a valid cluster token was presented (an invalid one is a 401).
    fn cluster(&self, headers: &HeaderMap) -> Result<bool, ApiError> {
        let Some(value) = headers.get(CLUSTER_TOKEN_HEADER) else {
            return Ok(false);
        };
        match &self.cluster_token {
            Some(hash) if hash.matches(value.as_bytes()) => Ok(true),
            _ => Err(ApiError::unauthorized("invalid x-cluster-token")),
        }
    }

    /// Checks `headers` against `access`.
    pub fn authorize(&self, access: Access, headers: &HeaderMap) -> Result<Principal, ApiError> {
        match access {
            Access::Public => Ok(Principal::Anonymous),
            Access::Worker => match &self.worker_token {
                None => Ok(Principal::Anonymous),
                Some(hash) => match headers.get(WORKER_TOKEN_HEADER) {
                    Some(v) if hash.matches(v.as_bytes()) => Ok(Principal::Worker),
                    Some(_) => Err(ApiError::unauthorized("invalid x-worker-token")),
                    None => Err(ApiError::unauthorized("x-worker-token is required")),
                },
            },
            Access::Operator | Access::Admin => {
                let Some(user) = self.user(headers)? else {
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
                let cluster = self.cluster(headers)?;
                let user = self.user(headers)?;
                match user {
                    Some(u) if u.is_operator() => Ok(Principal::User(u)),
                    _ if cluster => Ok(Principal::ClusterService),
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

/// State of the per-route middleware: the app and the route's access.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub(crate) state: AppState,
    pub(crate) access: Access,
}

/// A worker's own credential, checked against the hash in the store.
async fn verify_worker_credential(
    state: &AppState,
    presented: &str,
) -> Result<Principal, ApiError> {
    let Some(worker) = credential_worker(presented) else {
        return Err(ApiError::unauthorized("invalid x-worker-token"));
    };
    let stored = state.service().store().worker_credential(&worker).await?;
    match stored {
        Some(hash) if matches_hash_hex(presented, &hash) => Ok(Principal::WorkerNode(worker)),
        _ => Err(ApiError::unauthorized(format!(
            "invalid credential for worker {worker}"
        ))),
    }
}

/// Checks `headers` against `access`, including workers' own credentials
/// (a store lookup).
pub async fn authorize_request(
    state: &AppState,
    access: Access,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    if access == Access::Worker
        && let Some(value) = headers.get(WORKER_TOKEN_HEADER)
        && !state.auth().is_shared_worker_token(value.as_bytes())
        && let Ok(text) = value.to_str()
        && text.starts_with(WORKER_CREDENTIAL_PREFIX)
    {
        return verify_worker_credential(state, text).await;
    }
    state.auth().authorize(access, headers)
}

/// Whether `caller` may act as worker `code` on a worker route: its own
/// credential must name it; the shared token may act for any worker; an
/// anonymous caller (no shared token configured) only for a worker that has
/// no own credential.
pub(crate) async fn ensure_worker(
    state: &AppState,
    caller: &Principal,
    code: &WorkerId,
) -> Result<(), ApiError> {
    match caller {
        Principal::WorkerNode(own) if own == code => Ok(()),
        Principal::WorkerNode(own) => Err(ApiError::forbidden(format!(
            "this credential belongs to worker {own}, not {code}"
        ))),
        Principal::Anonymous => {
            if state
                .service()
                .store()
                .worker_credential(code)
                .await?
                .is_some()
            {
                Err(ApiError::unauthorized(format!(
                    "worker {code} joined with a join token: send its own credential in x-worker-token"
                )))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The per-route middleware: checks the credential, then hands the handler
/// a [`Principal`].
pub(crate) async fn gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    match authorize_request(&gate.state, gate.access, req.headers()).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => {
            if req.uri().path() == HEARTBEAT_PATH {
                gate.state.metrics().heartbeat_rejected();
            }
            e.into_response()
        }
    }
}

/// The caller of a gated route.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::unauthorized("no credential"))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

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
            .with_cluster_token("c")
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
        assert_eq!(
            cfg.authorize(
                Access::Service,
                &headers(&[("x-cluster-token", "c".into())])
            )
            .unwrap(),
            Principal::ClusterService
        );
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
            closed.authorize(Access::Worker, &HeaderMap::new()).unwrap(),
            Principal::Anonymous
        );
    }
}
