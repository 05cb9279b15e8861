//! An operator's reason for an admin action, for forcing a change past
//! the change freeze or for a student's own end: checked once, here, for
//! every wing.

use crate::error::Result;
use crate::validation::ValidationError;

/// Longest reason an operator may give for an admin action, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// An operator's reason, trimmed; the field is `reason`.
pub(crate) fn validate_reason(reason: &str) -> Result<&str> {
    let trimmed = reason.trim();
    let problem = if trimmed.is_empty() {
        Some("must not be empty".to_owned())
    } else if trimmed.chars().count() > MAX_REASON_CHARS {
        Some(format!("must be at most {MAX_REASON_CHARS} characters"))
    } else if trimmed.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => Err(ValidationError::new("reason", message).into()),
        None => Ok(trimmed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        assert_eq!(validate_reason("  maintenance  ").unwrap(), "maintenance");
        for bad in ["", "   ", "line\nbreak"] {
            let Err(Error::Invalid(e)) = validate_reason(bad) else {
                panic!("{bad:?} accepted");
            };
            assert_eq!(e.field, "reason");
        }
        assert!(validate_reason(&"x".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(validate_reason(&"x".repeat(MAX_REASON_CHARS + 1)).is_err());
    }
}
