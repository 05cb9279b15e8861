//! The credentials a test request presents, good and bad.

use std::time::Duration;

use base64::Engine;
use serde_json::json;
use vdi_cluster_server::auth::{Role, mint_jwt};

use super::{CLUSTER_TOKEN, JWT_SECRET, WORKER_TOKEN};

/// A credential presented by a test request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cred {
    None,
    Wrong,
    Worker,
    Cluster,
    /// A `SERVICE` JWT: the exam application.
    Service,
    Proctor,
    Admin,
    Student(String),
    Expired,
    AlgNone,
    WrongSecret,
}

pub fn jwt(sub: &str, roles: &[Role]) -> String {
    signed_jwt(JWT_SECRET.as_bytes(), sub, roles)
}

/// A JWT valid for an hour, signed with `secret`.
fn signed_jwt(secret: &[u8], sub: &str, roles: &[Role]) -> String {
    mint_jwt(secret, sub, roles, Duration::from_secs(3600), None, None).unwrap()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Cred {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Cred::None => req,
            Cred::Wrong => req
                .bearer_auth("not-a-jwt")
                .header("x-worker-token", "wrong")
                .header("x-cluster-token", "wrong"),
            Cred::Worker => req.header("x-worker-token", WORKER_TOKEN),
            Cred::Cluster => req.header("x-cluster-token", CLUSTER_TOKEN),
            Cred::Service => req.bearer_auth(jwt("exam-app", &[Role::Service])),
            Cred::Proctor => req.bearer_auth(jwt("proctor-1", &[Role::Proctor])),
            Cred::Admin => req.bearer_auth(jwt("admin-1", &[Role::Admin])),
            Cred::Student(sub) => req.bearer_auth(jwt(sub, &[Role::Student])),
            Cred::Expired => {
                let claims = json!({"sub": "admin-1", "role": "ADMIN", "exp": unix_now() - 3600});
                let token = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &claims,
                    &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
                )
                .unwrap();
                req.bearer_auth(token)
            }
            Cred::AlgNone => {
                let claims = json!({"sub": "admin-1", "role": "ADMIN", "exp": unix_now() + 3600});
                let token = format!(
                    "{}.{}.",
                    b64(r#"{"alg":"none","typ":"JWT"}"#),
                    b64(&claims.to_string())
                );
                req.bearer_auth(token)
            }
            Cred::WrongSecret => {
                let token = signed_jwt(
                    b"another-secret-entirely-0123456789",
                    "admin-1",
                    &[Role::Admin],
                );
                req.bearer_auth(token)
            }
        }
    }
}
