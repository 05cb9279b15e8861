//! Capacity on schedule, pure: when a booked exam (or the exams overlapping
//! it) will be short of slots, ask a scale hook for more workers ahead of
//! its prewarm lead, and give them back once no booked exam needs them.
//!
//! A [`CapacityRequest`] is stored under an id derived from the exam that
//! needs it and its start (`cap-{examId}-{startsAt ms}`), so every replica
//! that sees the same shortfall names the same request and the store's
//! insert-if-absent lets exactly one of them issue it. Its life:
//!
//! ```text
//! pending ──hook confirms──▶ requested ──workers joined──▶ joined
//!    ▲ retried                  │ deadline passes short      │
//!    └──────────────            ▼                            │
//!                            missing ──workers joined──▶ joined
//!   joined / missing / requested, after the exams' windows and needed by
//!   no booked exam ──▶ releasing (drained) ──hook confirms──▶ released
//! ```
//!
//! Every step is decided here from the request, the fleet and the calendar
//! ([`plan_requests`], [`next_step`]); the store only inserts if absent and
//! compares-and-sets on the request's version ([`CapacityRequests`]).

mod hook;
mod plan;
mod request;
mod store;

pub use hook::{ScaleDown, ScaleHook, ScaleHookError, ScaleUp};
pub use plan::{Fleet, Step, needed_by, next_step, plan_requests, promised, retry_after};
pub use request::{CapacityRequest, CapacityState};
pub use store::{CapacityRequests, StoredCapacityRequest};
