//! Worker codes that collide with a fixed path under `/api/vdi/workers/`:
//! heartbeats, registrations and joins using them are refused, since their
//! worker could never be addressed. A test in the route table's module
//! keeps the list equal to the table's fixed paths.

use vdi_cluster_core::{ValidationError, WorkerId};

use crate::error::ApiError;

/// The fixed single segments under `/api/vdi/workers/`.
pub(super) const RESERVED_WORKER_CODES: &[&str] = &[
    "heartbeat",
    "register",
    "join",
    "summary",
    "healthy",
    "reconcile",
    "stats",
    "install-script",
];

/// Whether `id` is a reserved code.
pub(crate) fn is_reserved(id: &WorkerId) -> bool {
    RESERVED_WORKER_CODES.contains(&id.as_str())
}

/// Refuses a reserved worker code (field `code`, 422).
pub(super) fn check_not_reserved(id: &WorkerId) -> Result<(), ApiError> {
    if is_reserved(id) {
        return Err(ApiError::invalid(ValidationError::new(
            "code",
            format!("{id} is reserved by the API; choose another code"),
        )));
    }
    Ok(())
}
