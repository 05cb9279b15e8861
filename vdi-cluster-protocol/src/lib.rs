//! # vdi-cluster-protocol
//!
//! The wire format of vdi-cluster, in one place: every JSON body and header
//! name that crosses a process boundary, how bodies are decoded, and the
//! credential formats. Modules follow the audience of the bodies:
//!
//! * [`node`] — control plane ↔ node agent: heartbeats, registration, the
//!   worker-side API, the header names (re-exported at the crate root).
//! * [`sessions`] — exam application ↔ control plane: allocate, look up and
//!   release a student's session, prewarm an exam.
//! * [`waiting_room`] — exam application and operators: a queued student's
//!   answer, and who waits in an exam's waiting room.
//! * [`workers`] — operators: workers as the admin page reads them, admin
//!   actions (drain, activate, disable) and what blocks a drain.
//! * [`cluster`] — operators: summary, statistics with zones, distribution,
//!   the audit trail.
//! * [`aetherium`] — operators: Aetherium's resource view in its own
//!   snake_case spelling (sessions and prewarmed machines as VMs, workers'
//!   figures under Aetherium's names).
//! * [`reconcile`] — operators: the reconcile report, admin policies as it
//!   and the events show them.
//! * [`events`] — operators: the events stream's bodies.
//! * [`exams`] — operators: exams booked with admission control.
//! * [`maintenance`] — operators: the change freeze's refusal and
//!   maintenance windows; [`scheduled`] — drains scheduled for a time.
//! * [`join`] — admins: join tokens, and the installation script that
//!   carries one.
//! * [`signin`] — operators' page: the session cookie and its CSRF token.
//! * [`ops`] — `/healthz`, `/readyz`.
//! * [`page`] — `limit` / `offset` of the paginated lists and the
//!   `total` their answers carry.
//! * [`dump`] — a whole store, as `vdi-cluster store export` writes it and
//!   `store import` reads it.
//! * [`ErrorBody`] — Aetherium's error body every endpoint answers with.
//! * [`decode`] — how bodies and query strings are read, errors naming the
//!   field; [`credentials`] — credential formats, kept as hashes.
//!
//! This crate decides the JSON shape: each body converts *from* core's
//! types (`From<&core::X>` or a constructor), so the API never depends on
//! core's serde attributes (which exist for the stores' records). It
//! converts shapes only: values are validated once, by core. It does no
//! I/O: the control plane (`vdi-cluster-server`), the node agent
//! (`vdi-cluster-node`) and the load generator all use it, and none copies
//! it. Field names are camelCase (but for [`aetherium`]), exactly as the exam platform writes them
//! (`docs/compat/` maps them against every other system); every
//! body has a test pinning its field names.

pub mod aetherium;
pub mod capacity;
pub mod cluster;
pub mod credentials;
pub mod decode;
pub mod dump;
mod error;
pub mod events;
pub mod exams;
pub mod extra_time;
pub mod join;
pub mod ledger;
pub mod maintenance;
pub mod node;
pub mod node_status;
pub mod ops;
pub mod pacing;
pub mod page;
pub mod reconcile;
pub mod rehearsal;
pub mod scheduled;
pub mod session_answers;
pub mod session_end;
pub mod sessions;
pub mod signin;
#[cfg(test)]
mod test_support;
mod unique_keys;
pub mod waiting_room;
pub mod webhooks;
pub mod workers;

pub use error::ErrorBody;
pub use node::*;
