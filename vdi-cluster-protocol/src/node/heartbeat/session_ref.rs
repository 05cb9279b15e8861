//! [`SessionRef`]: one session as heartbeats list it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::{SessionKey, ValidationError};

/// One session, as worker heartbeats list them in `liveSessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// The exam.
    #[schema(
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        min_length = 1,
        max_length = 128
    )]
    pub exam_id: String,
    /// The student.
    #[schema(
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        min_length = 1,
        max_length = 128
    )]
    pub user_id: String,
    /// In a heartbeat's `liveSessions`, optionally: the worker's allocate
    /// answer for the session (its connection details), so the control
    /// plane can adopt a session it has no record of with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub session: Option<serde_json::Map<String, serde_json::Value>>,
}

impl From<&SessionKey> for SessionRef {
    fn from(key: &SessionKey) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
            session: None,
        }
    }
}

impl SessionRef {
    /// Validates both ids (fields `examId` and `userId`).
    pub fn to_key(&self) -> Result<SessionKey, ValidationError> {
        SessionKey::parse(self.exam_id.clone(), self.user_id.clone())
    }
}
