//! The access model: roles a JWT carries, the credential each route
//! requires ([`Access`]), and who is calling once it is satisfied
//! ([`Principal`], handed to handlers as [`Caller`]).

use std::collections::BTreeSet;
use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use vdi_cluster_core::{Registrant, UserId, WorkerId};

use crate::error::ApiError;

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
    /// `x-worker-token`: the shared `WORKER_HEARTBEAT_TOKEN` or the
    /// worker's own credential; no credential only where anonymous
    /// heartbeats are explicitly allowed (development).
    Worker,
    /// The worker's own credential in `x-worker-token`, or an `ADMIN` JWT
    /// (deregistration: never anonymous, never the shared token).
    OwnWorker,
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
                "x-worker-token: the worker's own credential, or WORKER_HEARTBEAT_TOKEN"
            }
            Self::OwnWorker => {
                "x-worker-token: the worker's own credential, or Bearer JWT with role ADMIN"
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
    /// A public route, or a worker route where anonymous heartbeats are
    /// allowed.
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

    /// Who asks, as core's registration rules see it: the shared token
    /// proves "some worker", a worker's own credential "this worker".
    pub fn registrant(&self) -> Registrant {
        match self {
            Self::WorkerNode(_) => Registrant::OwnCredential,
            Self::User(u) if u.roles.contains(&Role::Admin) => Registrant::Operator,
            Self::Worker => Registrant::SharedToken,
            _ => Registrant::Anonymous,
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
