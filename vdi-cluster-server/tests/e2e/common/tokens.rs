//! The JWTs the exam application and the operators present.

use std::time::Duration;

use vdi_cluster_server::auth::{Role, mint_jwt};

use super::JWT_SECRET;

/// A JWT of `subject` with `role`, valid for an hour.
fn token(subject: &str, role: Role) -> String {
    mint_jwt(
        JWT_SECRET.as_bytes(),
        subject,
        &[role],
        Duration::from_secs(3600),
        None,
        None,
    )
    .unwrap()
}

/// The exam application's credential: a SERVICE JWT.
pub fn service_token() -> String {
    token("e2e-exam-app", Role::Service)
}

pub fn admin_token() -> String {
    token("e2e-admin", Role::Admin)
}
