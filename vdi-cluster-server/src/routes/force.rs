//! How a change asks to be forced past the change freeze (`force` and
//! `reason`, in a body or a query): checked here for every route that
//! takes workers out of service, and an operator's reason as the schemas
//! state it (a scheduled drain's too).

use vdi_cluster_core::ValidationError;
use vdi_cluster_core::service::{FreezeOverride, MAX_REASON_CHARS};

use crate::error::ApiError;

/// Checks an operator's reason as its schema states it: 1 to 500
/// characters, no control characters, no white space at either end.
pub(crate) fn check_reason(reason: &str) -> Result<(), ApiError> {
    let problem = if reason.is_empty() {
        Some("must not be empty".to_owned())
    } else if reason.chars().count() > MAX_REASON_CHARS {
        Some(format!("must be at most {MAX_REASON_CHARS} characters"))
    } else if reason.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if reason.trim() != reason {
        Some("must not begin or end with white space".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => Err(ApiError::invalid(ValidationError::new("reason", message))),
        None => Ok(()),
    }
}

/// The reason of a change forced past the change freeze: `force: true`
/// needs a `reason`; `None` when the change respects the freeze. A reason
/// given is checked either way ([`check_reason`]).
pub(crate) fn forced_reason(
    force: Option<bool>,
    reason: Option<String>,
) -> Result<Option<String>, ApiError> {
    if let Some(r) = &reason {
        check_reason(r)?;
    }
    match (force, reason) {
        (Some(true), Some(reason)) => Ok(Some(reason)),
        (Some(true), None) => Err(ApiError::invalid(ValidationError::new(
            "reason",
            "is required with force: true",
        ))),
        _ => Ok(None),
    }
}

/// The freeze override of a forced reason.
pub(crate) fn override_of(reason: Option<&str>) -> FreezeOverride<'_> {
    reason.map_or(FreezeOverride::Respect, |reason| FreezeOverride::Force {
        reason,
    })
}
