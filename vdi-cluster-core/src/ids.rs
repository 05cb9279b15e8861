//! Validated identifiers: worker codes, exam and user ids, dispatch ids.
//!
//! Every identifier that crosses an API boundary is checked once, here, so a
//! backend can rely on what it stores: no empty id, no control character, a
//! bounded length. Backends must still encode ids when they build key names
//! (an exam id may contain `:`, spaces or any Unicode letter).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// Longest accepted worker code, in bytes.
pub const MAX_WORKER_CODE_LEN: usize = 64;
/// Longest accepted exam or user id, in characters.
pub const MAX_SUBJECT_ID_LEN: usize = 128;

/// The code of a worker node (`worker-node-2` in the exam platform's runbook).
///
/// ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit,
/// at most [`MAX_WORKER_CODE_LEN`] bytes: worker codes appear in URL paths and
/// host names, so anything else is rejected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkerId(String);

impl WorkerId {
    /// Validates `code`, naming `field` in the error.
    pub fn parse(field: &str, code: impl Into<String>) -> Result<Self, ValidationError> {
        let code = code.into();
        if code.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if code.len() > MAX_WORKER_CODE_LEN {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_WORKER_CODE_LEN} characters"),
            ));
        }
        let mut chars = code.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !first_ok || !rest_ok {
            return Err(ValidationError::new(
                field,
                "may contain only ASCII letters, digits, '.', '_' and '-', and must start with a letter or digit",
            ));
        }
        Ok(Self(code))
    }

    /// The code as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WorkerId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse("code", value)
    }
}

impl From<WorkerId> for String {
    fn from(value: WorkerId) -> Self {
        value.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_subject(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_SUBJECT_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_SUBJECT_ID_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    if value.trim() != value {
        return Err(ValidationError::new(
            field,
            "must not start or end with white space",
        ));
    }
    Ok(())
}

macro_rules! subject_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`, naming `field` in the error.
            pub fn parse(field: &str, value: impl Into<String>) -> Result<Self, ValidationError> {
                let value = value.into();
                check_subject(field, &value)?;
                Ok(Self(value))
            }

            /// The id as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse($field, value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

subject_id!(
    /// An exam's id as the exam application knows it. Any printable text of
    /// at most [`MAX_SUBJECT_ID_LEN`] characters, including `:` and Unicode.
    ExamId,
    "examId"
);
subject_id!(
    /// A student's (or any user's) id as the exam application knows it. Any
    /// printable text of at most [`MAX_SUBJECT_ID_LEN`] characters.
    UserId,
    "userId"
);

/// One student's session in one exam: the unit that is dispatched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionKey {
    /// The exam.
    pub exam_id: ExamId,
    /// The student.
    pub user_id: UserId,
}

impl SessionKey {
    /// A key from already validated ids.
    pub fn new(exam_id: ExamId, user_id: UserId) -> Self {
        Self { exam_id, user_id }
    }

    /// Validates both ids (fields `examId` and `userId`).
    pub fn parse(
        exam_id: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            exam_id: ExamId::parse("examId", exam_id)?,
            user_id: UserId::parse("userId", user_id)?,
        })
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.exam_id, self.user_id)
    }
}

/// Identifies one dispatch attempt, so that confirming, undoing or releasing
/// a reservation never touches a newer dispatch of the same session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DispatchId(pub uuid::Uuid);

impl DispatchId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl Default for DispatchId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DispatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_codes() {
        assert!(WorkerId::parse("code", "worker-node-2").is_ok());
        assert!(WorkerId::parse("code", "w1.zone_a").is_ok());
        for bad in ["", "../etc", "-x", "wörker", "a b", &"w".repeat(65)] {
            let err = WorkerId::parse("code", bad).unwrap_err();
            assert_eq!(err.field, "code", "{bad}");
        }
    }

    #[test]
    fn subject_ids_accept_colons_and_unicode() {
        assert!(ExamId::parse("examId", "exam:2026:Toán cao cấp").is_ok());
        assert!(UserId::parse("userId", "sv 001").is_ok());
        assert_eq!(UserId::parse("userId", "").unwrap_err().field, "userId");
        assert!(UserId::parse("userId", "a\nb").is_err());
        assert!(UserId::parse("userId", " padded").is_err());
        assert!(ExamId::parse("examId", "x".repeat(129)).is_err());
    }

    #[test]
    fn serde_validates() {
        let err = serde_json::from_str::<WorkerId>("\"../x\"").unwrap_err();
        assert!(err.to_string().contains("code"));
        let key: SessionKey = serde_json::from_str(r#"{"examId":"e1","userId":"u1"}"#).unwrap();
        assert_eq!(key.to_string(), "e1/u1");
    }
}
