//! HS256 JWTs: the claims this server reads and mints, minting, and
//! verification (HS256 only; `sub` and `exp` required; `nbf` and `iat`
//! checked when present; `iss`/`aud` when configured).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::access::{Role, User};
use crate::error::ApiError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const JWT_LEEWAY_SECS: u64 = 30;

/// Claims of the tokens this server reads and mints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user id (audited as the actor).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch: refused until then (less the
    /// leeway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch: refused when later than now
    /// plus the leeway (a token from the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
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

pub(crate) fn unix_now() -> u64 {
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
    let now = unix_now();
    let claims = Claims {
        sub: sub.to_owned(),
        exp: now.saturating_add(ttl.as_secs()),
        nbf: None,
        iat: Some(now),
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

/// Verifies bearer tokens signed with one secret.
#[derive(Clone)]
pub(crate) struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// A verifier of HS256 tokens signed with `secret`, checking `iss` and
    /// `aud` when given.
    pub(crate) fn new(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
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
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The user a valid `token` names; a 401 otherwise.
    pub(crate) fn verify(&self, token: &str) -> Result<User, ApiError> {
        self.verify_until(token).map(|(user, _)| user)
    }

    /// The user a valid `token` names and its `exp` (seconds since the
    /// epoch); a 401 otherwise.
    pub(crate) fn verify_until(&self, token: &str) -> Result<(User, u64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| ApiError::unauthorized(format!("invalid bearer token: {e}")))?;
        let claims = data.claims;
        if claims
            .iat
            .is_some_and(|iat| iat > unix_now().saturating_add(JWT_LEEWAY_SECS))
        {
            return Err(ApiError::unauthorized(
                "invalid bearer token: iat is in the future",
            ));
        }
        if claims.sub.is_empty() {
            return Err(ApiError::unauthorized("invalid bearer token: empty sub"));
        }
        let roles = claims
            .role
            .iter()
            .chain(claims.roles.iter().flatten())
            .filter_map(|r| Role::parse(r))
            .collect();
        Ok((
            User {
                sub: claims.sub,
                roles,
            },
            claims.exp,
        ))
    }
}
