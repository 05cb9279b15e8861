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
//!   registration when `WORKER_HEARTBEAT_TOKEN` is set (as the exam
//!   platform's registry has it); without it those routes are open.
//! * **Worker credential** — `x-worker-token: vdiw.<code>.<secret>`, a
//!   worker's own credential received by joining with a join token (as
//!   SkyPanelV2 and minicloud); stored as a hash in the backend, valid only for that worker's
//!   own heartbeats, registration and deregistration. Once a worker has
//!   one (live, revoked or reset), heartbeats for its code with the shared
//!   token or none are refused.
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
//! [route table](crate::routes::route_table); a per-route middleware
//! ([`gate`](crate::gate)) checks it before the body is read and hands the
//! handler a [`Principal`].
//!
//! ## Layout
//!
//! Nothing here knows the server's state; the request-time gate that needs
//! it ([`crate::gate`]) builds on these pieces:
//!
//! * [`access`] — the access model: [`Role`], [`Access`], [`User`],
//!   [`Principal`] and the [`Caller`] extractor.
//! * [`jwt`] — HS256 JWTs: [`Claims`], [`mint_jwt`], verification.
//! * [`secrets`] — random secrets, worker credentials, token hashes.
//! * [`config`] — [`AuthConfig`]: the credentials the server accepts, and
//!   the header checks that need no store.
//! * [`csrf`] — [`CsrfKey`]: the key of the operators' page's CSRF tokens,
//!   derived from the JWT secret.
//! * [`session`] — the operators' page: an ADMIN or PROCTOR JWT kept in an
//!   HttpOnly, `SameSite=Strict` cookie, its CSRF token, and the layer
//!   that lets the cookie stand for `Authorization: Bearer`.

pub mod access;
pub mod config;
pub mod csrf;
pub mod jwt;
pub mod secrets;
pub mod session;

pub use access::{Access, Caller, CredentialKind, Permit, Principal, Role, User};
pub use config::AuthConfig;
pub use csrf::CsrfKey;
pub use jwt::{Claims, JWT_LEEWAY_SECS, MintError, mint_jwt};
pub use secrets::{
    TokenHash, WORKER_CREDENTIAL_PREFIX, credential_worker, hash_hex, matches_hash_hex,
    new_worker_credential, random_secret,
};
