//! [`ScheduledActions`]: the storage of scheduled actions.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles sharing one
//! storage:
//!
//! * **Writes are compare-and-set on the action's version.**
//!   [`put_scheduled`](ScheduledActions::put_scheduled) writes only if the
//!   stored version is the expected one (`None`: only if no action has
//!   this id), bumps it, and keeps the index of open actions (pending or
//!   firing, [`ActionState::is_open`](super::ActionState::is_open)) in
//!   the same atomic step. Two writers that read one version never both
//!   succeed: of replicas racing to claim an action, one claim is written.
//! * **Open actions are listed in time order.**
//!   [`open_scheduled`](ScheduledActions::open_scheduled) answers the open
//!   actions due by an instant, by `at` then id (byte order), as one
//!   consistent view. Finished actions are kept and read by id, never
//!   listed.
//!
//! The store never decides whether an action may move: core does
//! ([`ScheduledAction::claim`], [`cancel`](ScheduledAction::cancel),
//! [`finish`](ScheduledAction::finish)).

use std::fmt::Debug;

use async_trait::async_trait;

use super::ScheduledAction;
use crate::error::Result;
use crate::store::CasOutcome;
use crate::time::Timestamp;

/// A stored action with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledSnapshot {
    /// The action.
    pub action: ScheduledAction,
    /// Its version, bumped by every write.
    pub version: u64,
}

/// Storage of scheduled actions. See the module's contract.
#[async_trait]
pub trait ScheduledActions: Debug + Send + Sync + 'static {
    /// Writes `action` if its stored version is `expected` (`None`: only if
    /// there is none), and bumps it.
    async fn put_scheduled(
        &self,
        action: &ScheduledAction,
        expected: Option<u64>,
    ) -> Result<CasOutcome>;

    /// The action with this id, in any state.
    async fn scheduled(&self, id: &str) -> Result<Option<ScheduledSnapshot>>;

    /// The open actions whose `at` is not after `due_by` (every open one
    /// with `None`), by `at` then id, at most `limit`.
    async fn open_scheduled(
        &self,
        due_by: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<ScheduledSnapshot>>;
}
