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
//!   [`scheduler`] (ranking, explanations, the prewarm planner), [`exam`]
//!   (booked exams and their admission), [`waiting_room`] (the waiting room's
//!   positions and wait estimate), [`credential`] (what a join may
//!   do, when a worker credential is valid), [`vm`] (sessions and
//!   prewarmed machines as Aetherium's VMs, and their ids).
//! * **Store traits** — [`Registry`], [`DispatchStore`], [`LeaderLease`],
//!   [`AuditLog`], [`Credentials`], [`ExamStore`](calendar::ExamStore),
//!   [`WaitingRoom`](waiting_room::WaitingRoom) (together: [`Store`]):
//!   storage and atomic steps only. The
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
//!   worker whose `dispatched + unrecorded >= maxSessions`.
//! * **B — one dispatch per session:** a repeated allocate returns the
//!   existing dispatch.
//! * **C — no drift:** every counter equals a recount of the dispatch
//!   records; reconcile repairs and reports any drift. Its passes finish:
//!   bounded steps resume from a cursor kept beside the background lease
//!   until every dispatch is covered.
//! * **D — admission:** at no instant do the booked exams overlapping it
//!   need more than the schedulable capacity less headroom (checked as a
//!   matching of exams to worker pools their constraints allow), however
//!   many bookings race on however many replicas. Core decides
//!   ([`exam::admission`]); the store writes the decision only if the
//!   calendar's version is still the one decided on
//!   ([`ExamStore`](calendar::ExamStore)), else core re-reads and decides
//!   again.
//! * **E — the waiting room is first come, first served:** a student of a
//!   booked exam with `queue` on who cannot be placed waits in the exam's
//!   queue, held in the backend ([`WaitingRoom`](waiting_room::WaitingRoom)).
//!   However many enqueues, promotions, releases and abandons race on
//!   however many replicas, no student is promoted twice, none is placed
//!   ahead of one queued earlier for the same exam (a new arrival joins the
//!   back while others wait), and none is lost (each ends placed, left or
//!   abandoned). Core decides whom to promote and when
//!   (`service::placement` and `service::exams`); the store claims only the head, one claim per
//!   exam with a fenced token and a deadline, and completes a claim —
//!   removing the entry and counting it placed — only while the claim is
//!   still held; the allocation in between is the normal one, so a claim
//!   taken over from a dead promoter finds the same dispatch (B).
//! * **F — start permits:** at no moment are more starts in flight on a
//!   worker than its start concurrency ([`pacing::start_limit`]), across
//!   replicas: each start takes a permit of its worker held in the backend
//!   ([`StartPermits`](pacing::StartPermits)), granted in one atomic step
//!   only while the permits held plus the starts queued ahead are fewer
//!   than the limit; a permit's lease gives it back when its replica dies.
//!
//! * **The fleet's report is the truth about what runs; records are
//!   repaired toward it, never the reverse.** A heartbeat may list the
//!   sessions the worker runs (`liveSessions`, optionally with each one's
//!   connection details). For each listed session that has no dispatch on
//!   that worker ([`fleet::judge_live`] decides, the heartbeat applies):
//!   - no record at all (a replica died mid-allocation, a worker call timed
//!     out after the worker started it, the backend lost its data) → it is
//!     **adopted**: its active dispatch is created on that worker with its
//!     counters and sticky worker in one atomic store step
//!     ([`DispatchStore::adopt`]); a returning student gets that desktop;
//!   - a reservation on that worker older than the fleet grace (at least
//!     the worker-call timeout, so an allocation in flight confirms its own)
//!     → the reservation is **confirmed**;
//!   - a dispatch settled on another worker for the fleet grace → the
//!     worker is told to **stop** its copy (`releaseSessions` in the
//!     heartbeat answer).
//!
//!   Each adoption and stop is an event (`sessionAdopted`,
//!   `reservationAdopted`, `sessionStopped`), is counted in the
//!   heartbeat's answer ([`service::HeartbeatAck`]) and in the next
//!   reconcile report, each of whose steps also holds every worker's stored
//!   report against the dispatches it read (confirming and stopping; a
//!   stored report may predate a release, so only a fresh heartbeat
//!   adopts). A student refused
//!   for want of a slot whose session a worker reports running gets that
//!   session adopted instead. A record of a running worker is never
//!   removed because of one report alone: that stays reconcile's job, on
//!   evidence (a newer heartbeat omitting it after a grace); a restart is
//!   the exception below, and so is an adopted dispatch: adopted from the
//!   report at sequence N that listed it, it has no start in flight, so
//!   the first report of the same boot with a higher sequence that omits
//!   it ([`dispatch::gone_since_adoption`]; a release raced the report
//!   that had it adopted) releases it in the heartbeat's own atomic step,
//!   without the grace, and reconcile does the same from a stored report.
//!   A worker that sends no sequences keeps the grace. A worker call
//!   that times out undoes its reservation; the session, if the worker
//!   started it anyway, is adopted or stopped by this rule (see
//!   `service::allocate`'s docs).
//!
//! * **A worker that answers is never failed.** A heartbeat under a new
//!   boot id proves lost the settled dispatches of older boots that it
//!   does not list ([`dispatch::lost_to_report`]): they are released, with
//!   their counters and a `session.lost` alert each, in the same atomic
//!   step as the record's compare-and-set
//!   ([`Outbox::put_worker_releasing_lost`](outbox::Outbox::put_worker_releasing_lost)),
//!   in bounded steps ([`fleet::MAX_LOST_PER_STEP`]; the worker's next
//!   reports or the next reconcile pass take the rest), once however many
//!   replicas apply the heartbeat. The students keep their keys and are
//!   placed anew when they return; the failure policy, the mass-failure
//!   guard and the lack of a healthy target never hold a worker that
//!   reports.
//! * **A freed slot is usable at once; no running session goes uncounted.**
//!   Used slots are `dispatched + unrecorded`
//!   ([`worker::WorkerRecord::unrecorded`]: what the worker's report runs
//!   beyond its dispatches). A removal the worker confirmed frees the slot
//!   immediately; a removal whose worker call failed or timed out holds it
//!   (the store's `hold`, atomic with the removal) until the worker reports
//!   again.
//! * **The mass-failure guard protects reloads and holds.** While at least
//!   `mass_failure_percent` of the enabled workers are silent, no session
//!   is moved for silence — neither by reconcile nor when its student
//!   reloads (the existing dispatch is handed back with a warning) — and the
//!   guard stays on for the hard timeout after the share drops, so workers
//!   returning one by one are not migrated.
//!
//! The `testkit` feature holds the conformance suite every backend runs to
//! prove them, plus simulated workers for examples and tests.
//!
//! See [`service`] for a complete allocate example.

pub mod calendar;
pub mod capacity;
pub mod client;
pub mod credential;
pub mod dispatch;
mod error;
pub mod events;
pub mod exam;
pub mod fleet;
pub mod health;
pub mod ids;
pub mod ledger;
pub mod memory;
pub mod network;
pub mod operator_session;
pub mod outbox;
pub mod pacing;
pub mod page;
pub mod policy;
pub mod reconcile;
pub mod rehearsal;
pub mod scale;
pub mod scheduled;
pub mod scheduler;
pub mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod transfer;
mod validation;
pub mod vm;
pub mod waiting_room;
pub mod worker;

pub use capacity::{CapacityInput, CapacitySpec, Millicores};
pub use client::{DesktopSettings, WorkerCallError, WorkerClient};
pub use dispatch::{Dispatch, DispatchState};
pub use error::{Error, Result};
pub use events::{Event, EventKind, EventSink, LogSink};
pub use exam::{Exam, ExamPatch};
pub use health::{Availability, HeartbeatStamp, ResourceUsage};
pub use ids::{DispatchId, ExamId, SessionKey, UserId, WorkerId};
pub use memory::MemoryStore;
pub use page::{Page, Paged};
pub use policy::{AdminAction, AdminPolicy, DrainStatus};
pub use scheduler::{Constraints, NoCapacity, SchedulingPolicy};
pub use service::{ClusterService, FailurePolicy, ServiceConfig};
pub use store::{AuditLog, Credentials, DispatchStore, LeaderLease, Registry, Store};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use validation::ValidationError;
pub use worker::{
    Heartbeat, HostInfo, Registrant, WorkerDescription, WorkerRecord, WorkerSnapshot, WorkerStatus,
    WorkerView,
};
