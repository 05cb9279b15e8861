//! [`CapacityRequests`]: the capacity requests' storage.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles sharing one
//! storage:
//!
//! * **Insert if absent.** [`insert_capacity_request`](CapacityRequests::insert_capacity_request)
//!   writes a request only if none with its id is stored, at version 1,
//!   as one atomic step: of replicas racing to store the same request
//!   (the same id, derived from the exam that needs it), exactly one is
//!   answered `true`.
//! * **Compare-and-set on the version.**
//!   [`update_capacity_request`](CapacityRequests::update_capacity_request)
//!   replaces a stored request only if its version is still the one the
//!   caller read, and bumps it: of replicas racing to claim one step of a
//!   request (a call of the hook), exactly one wins.
//! * **Events ride the write.** The outbox entries passed with a write
//!   are written in the same atomic step, and only if the write applied.
//! * The backend never decides a step: core does.

use std::fmt::Debug;

use async_trait::async_trait;

use super::CapacityRequest;
use crate::error::Result;
use crate::outbox::OutboxEntry;

/// A request as stored, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCapacityRequest {
    /// The request.
    pub request: CapacityRequest,
    /// Bumped by every write; 1 once inserted.
    pub version: u64,
}

/// Storage of capacity requests. See the module's contract.
#[async_trait]
pub trait CapacityRequests: Debug + Send + Sync + 'static {
    /// Every stored request, by id.
    async fn capacity_requests(&self) -> Result<Vec<StoredCapacityRequest>>;

    /// Stores `request` at version 1 and writes `entries` to the outbox,
    /// if no request with its id is stored; `false` (nothing written)
    /// otherwise.
    async fn insert_capacity_request(
        &self,
        request: &CapacityRequest,
        entries: &[OutboxEntry],
    ) -> Result<bool>;

    /// Replaces the request with `request.id` and writes `entries`, if its
    /// version is `expected`; bumps the version. `false` (nothing
    /// written) if it changed or is not stored.
    async fn update_capacity_request(
        &self,
        request: &CapacityRequest,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool>;
}
