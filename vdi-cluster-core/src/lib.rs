//! # vdi-cluster-core
//!
//! The worker registry and session scheduler of a remote-desktop exam
//! platform: worker nodes heartbeat their CPU, memory and sessions; the
//! control plane computes slot capacity, places each student's session on a
//! worker (sticky per exam, failover on error), drains nodes without
//! dropping students, prewarms machines before an exam and reconciles stale
//! records.
//!
//! ## Layers
//!
//! * **Domain** — pure, no I/O, time passed in: [`capacity`], [`health`],
//!   [`policy`] (the drain state machine), [`worker`], [`dispatch`],
//!   [`scheduler`] (ranking, explanations, the prewarm planner).
//! * **Store traits** — [`Registry`], [`DispatchStore`], [`LeaderLease`],
//!   [`AuditLog`], [`Credentials`] (together: [`Store`]): storage and atomic steps only. The
//!   in-memory backend [`MemoryStore`] is the embedded default; Redis and
//!   PostgreSQL live in their own crates.
//! * **Orchestration** — [`ClusterService`]: heartbeats, allocate with
//!   failover, release, admin transitions, prewarm, reconcile and the
//!   background loop. It calls worker nodes through a [`WorkerClient`].
//!
//! ## Invariants
//!
//! * **A — no over-allocation:** no interleaving of concurrent allocations,
//!   from any number of replicas sharing a backend, reserves a slot on a
//!   worker whose `max(reported, dispatched) >= maxSessions`.
//! * **B — one dispatch per session:** a repeated allocate returns the
//!   existing dispatch.
//! * **C — no drift:** every counter equals a recount of the dispatch
//!   records; reconcile repairs and reports any drift.
//!
//! The `testkit` feature holds the conformance suite every backend runs to
//! prove them, plus simulated workers for examples and tests.
//!
//! See [`service`] for a complete allocate example.

pub mod capacity;
pub mod client;
pub mod dispatch;
mod error;
pub mod events;
pub mod health;
pub mod ids;
pub mod memory;
pub mod policy;
pub mod reconcile;
pub mod scheduler;
pub mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
mod validation;
pub mod worker;

pub use capacity::{CapacityInput, CapacitySpec, Millicores};
pub use client::{WorkerCallError, WorkerClient};
pub use dispatch::{Dispatch, DispatchState};
pub use error::{Error, Result};
pub use events::{Event, EventKind, EventSink, LogSink};
pub use health::{Availability, HeartbeatStamp, ResourceUsage};
pub use ids::{DispatchId, ExamId, SessionKey, UserId, WorkerId};
pub use memory::MemoryStore;
pub use policy::{AdminAction, AdminPolicy, DrainStatus};
pub use scheduler::{Constraints, NoCapacity, SchedulingPolicy};
pub use service::{ClusterService, FailurePolicy, ServiceConfig};
pub use store::{AuditLog, Credentials, DispatchStore, LeaderLease, Registry, Store};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use validation::ValidationError;
pub use worker::{
    Heartbeat, Registrant, WorkerDescription, WorkerRecord, WorkerSnapshot, WorkerStatus,
    WorkerView,
};
