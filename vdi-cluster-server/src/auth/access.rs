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
    /// Exam supervisors: may watch and operate workers (as in the exam platform).
    Proctor,
    /// A student: may touch only their own session.
    Student,
    /// The exam application: the session API and prewarm, nothing else
    /// (never worker or admin routes).
    Service,
}

impl Role {
    /// The claim value (`ADMIN`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Proctor => "PROCTOR",
            Self::Student => "STUDENT",
            Self::Service => "SERVICE",
        }
    }

    /// Parses a claim value, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Admin, Self::Proctor, Self::Student, Self::Service]
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
    /// A `SERVICE` (the exam application) or `ADMIN`/`PROCTOR` JWT, or a
    /// `STUDENT` JWT whose `sub` is the session's `userId`. Never the
    /// cluster token: that is only what the control plane sends to workers.
    Session,
    /// A `SERVICE` or `ADMIN`/`PROCTOR` JWT.
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
                "Bearer JWT with role SERVICE, ADMIN or PROCTOR, or role STUDENT for its own userId"
            }
            Self::Service => "Bearer JWT with role SERVICE, ADMIN or PROCTOR",
            Self::Join => "x-join-token (a join token created by an admin)",
        }
    }
}

/// A kind of credential a caller may present: the columns of the roles
/// table ([`roles_table`](crate::routes::roles_table)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// No credential.
    Anonymous,
    /// The shared `WORKER_HEARTBEAT_TOKEN` in `x-worker-token`.
    WorkerToken,
    /// A worker's own credential (`vdiw.<code>.<secret>`) in
    /// `x-worker-token`.
    OwnWorkerCredential,
    /// A join token in `x-join-token`.
    JoinToken,
    /// A JWT with role `SERVICE`: the exam application.
    Service,
    /// A JWT with role `STUDENT`.
    Student,
    /// A JWT with role `PROCTOR`.
    Proctor,
    /// A JWT with role `ADMIN`.
    Admin,
    /// `WORKER_CLUSTER_TOKEN` in `x-cluster-token`: what the control plane
    /// sends to workers, accepted by no route of the control plane.
    ClusterToken,
}

impl CredentialKind {
    /// Every kind, in the roles table's order.
    pub const ALL: [Self; 9] = [
        Self::Anonymous,
        Self::WorkerToken,
        Self::OwnWorkerCredential,
        Self::JoinToken,
        Self::Service,
        Self::Student,
        Self::Proctor,
        Self::Admin,
        Self::ClusterToken,
    ];

    /// A column heading.
    pub fn heading(self) -> &'static str {
        match self {
            Self::Anonymous => "none",
            Self::WorkerToken => "worker token",
            Self::OwnWorkerCredential => "worker's own credential",
            Self::JoinToken => "join token",
            Self::Service => "SERVICE",
            Self::Student => "STUDENT",
            Self::Proctor => "PROCTOR",
            Self::Admin => "ADMIN",
            Self::ClusterToken => "cluster token",
        }
    }
}

/// Whether a [`CredentialKind`] opens a route of some [`Access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permit {
    /// Yes.
    Yes,
    /// Only for itself: a worker's own code, a student's own `userId`.
    OwnOnly,
    /// Only where explicitly allowed (anonymous heartbeats, development).
    OptIn,
    /// No.
    No,
}

impl Permit {
    /// A table cell.
    pub fn cell(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::OwnOnly => "own",
            Self::OptIn => "opt-in",
            Self::No => "—",
        }
    }
}

impl Access {
    /// Whether `kind` opens a route with this access: the model the gate
    /// implements, and what the roles table documents.
    pub fn permits(self, kind: CredentialKind) -> Permit {
        use CredentialKind as K;
        match (self, kind) {
            (Self::Public, _) => Permit::Yes,
            (Self::Worker, K::WorkerToken) => Permit::Yes,
            (Self::Worker, K::OwnWorkerCredential) => Permit::OwnOnly,
            (Self::Worker, K::Anonymous) => Permit::OptIn,
            (Self::OwnWorker, K::OwnWorkerCredential) => Permit::OwnOnly,
            (Self::OwnWorker | Self::Admin, K::Admin) => Permit::Yes,
            (Self::Operator, K::Admin | K::Proctor) => Permit::Yes,
            (Self::Session | Self::Service, K::Service | K::Admin | K::Proctor) => Permit::Yes,
            (Self::Session, K::Student) => Permit::OwnOnly,
            (Self::Join, K::JoinToken) => Permit::Yes,
            _ => Permit::No,
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

    /// Whether the user may use the session API for any student (`SERVICE`,
    /// `ADMIN` or `PROCTOR`).
    pub fn acts_for_students(&self) -> bool {
        self.is_operator() || self.roles.contains(&Role::Service)
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
            Self::User(u) if u.acts_for_students() => Ok(()),
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
