//! HS256 JWTs: the claims this server reads and mints, minting, and
//! verification (HS256 only; `sub` and `exp` required; `nbf` and `iat`
//! checked when present; `iss`/`aud` when configured).
//!
//! A service presents the same token on every request, so a verified
//! token's user is kept until the token expires, under the SHA-256 of the
//! token (at most [`VERIFIED_TOKENS_KEPT`] of them): a token seen again
//! costs a hash and a look-up instead of a signature check and a parse.
//! A token once valid stays valid until its `exp` (plus the leeway), so
//! the answer is the same; a refused token is never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::access::{Role, User};
use crate::error::ApiError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const JWT_LEEWAY_SECS: u64 = 30;

/// Most verified tokens a server keeps; past that, the expired ones are
/// dropped, and all of them if none has expired.
pub const VERIFIED_TOKENS_KEPT: usize = 4096;

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

/// The SHA-256 of a token.
type TokenDigest = [u8; 32];

/// Verified tokens: the user each names and its `exp`.
type Verified = HashMap<TokenDigest, (User, u64)>;

/// Verifies bearer tokens signed with one secret, keeping the verified
/// ones until they expire (shared by its clones).
#[derive(Clone)]
pub(crate) struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    verified: Arc<Mutex<Verified>>,
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
            verified: Arc::default(),
        }
    }

    /// The user a valid `token` names; a 401 otherwise.
    pub(crate) fn verify(&self, token: &str) -> Result<User, ApiError> {
        self.verify_until(token).map(|(user, _)| user)
    }

    /// The user a valid `token` names and its `exp` (seconds since the
    /// epoch); a 401 otherwise.
    pub(crate) fn verify_until(&self, token: &str) -> Result<(User, u64), ApiError> {
        self.verify_at(token, unix_now())
    }

    /// [`verify_until`](Self::verify_until) at `now` (seconds since the
    /// epoch): a token verified before is answered from what was kept,
    /// refused once its `exp` plus the leeway is past.
    fn verify_at(&self, token: &str, now: u64) -> Result<(User, u64), ApiError> {
        let digest: TokenDigest = Sha256::digest(token.as_bytes()).into();
        if let Some((user, exp)) = self.lock().get(&digest) {
            if exp.saturating_add(JWT_LEEWAY_SECS) < now {
                return Err(ApiError::unauthorized(
                    "invalid bearer token: ExpiredSignature",
                ));
            }
            return Ok((user.clone(), *exp));
        }
        let (user, exp) = self.decode(token)?;
        let mut verified = self.lock();
        if verified.len() >= VERIFIED_TOKENS_KEPT {
            verified.retain(|_, (_, exp)| exp.saturating_add(JWT_LEEWAY_SECS) >= now);
            if verified.len() >= VERIFIED_TOKENS_KEPT {
                verified.clear();
            }
        }
        verified.insert(digest, (user.clone(), exp));
        Ok((user, exp))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `token`'s signature and claims.
    fn decode(&self, token: &str) -> Result<(User, u64), ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a secret of the tests, long enough";

    fn token(sub: &str, ttl: u64) -> String {
        mint_jwt(
            SECRET,
            sub,
            &[Role::Service],
            Duration::from_secs(ttl),
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_kept_token_answers_as_verified_until_it_expires() {
        let verifier = JwtVerifier::new(SECRET, None, None);
        let t = token("exam-app", 60);
        let now = unix_now();
        let (first, exp) = verifier.verify_at(&t, now).unwrap();
        assert_eq!(verifier.lock().len(), 1);
        let (again, exp_again) = verifier.verify_at(&t, now).unwrap();
        assert_eq!((first.sub.as_str(), exp), (again.sub.as_str(), exp_again));
        assert_eq!(first.roles, again.roles);
        // Within the leeway after `exp`, still valid; past it, refused.
        assert!(verifier.verify_at(&t, exp + JWT_LEEWAY_SECS).is_ok());
        let refused = verifier
            .verify_at(&t, exp + JWT_LEEWAY_SECS + 1)
            .unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_refused_token_is_never_kept() {
        let verifier = JwtVerifier::new(SECRET, None, None);
        let other = JwtVerifier::new(b"another secret, long enough too", None, None);
        let forged = mint_jwt(
            b"another secret, long enough too",
            "x",
            &[Role::Admin],
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        assert!(other.verify(&forged).is_ok());
        for _ in 0..2 {
            assert!(verifier.verify(&forged).is_err());
        }
        assert!(verifier.lock().is_empty());
    }

    #[test]
    fn the_kept_tokens_are_bounded() {
        let verifier = JwtVerifier::new(SECRET, None, None);
        for i in 0..VERIFIED_TOKENS_KEPT + 10 {
            verifier.verify(&token(&format!("u{i}"), 60)).unwrap();
        }
        let kept = verifier.lock().len();
        assert!((1..=VERIFIED_TOKENS_KEPT).contains(&kept), "{kept}");
    }
}
