//! The error body every endpoint answers with, on either side.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The error body of every endpoint (Aetherium's, `docs/compat/aetherium.md`):
/// `{"error": "Not Found", "message": "Worker not found: w-9", "code": 404}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP reason phrase (`Not Found`).
    pub error: String,
    /// What went wrong, for humans; names the field for bad input.
    pub message: String,
    /// The HTTP status code.
    pub code: u16,
    /// The offending field, in the API's camelCase spelling, for bad input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_body_field_names() {
        let mut body = ErrorBody {
            error: "Not Found".into(),
            message: "Worker not found: w-9".into(),
            code: 404,
            field: None,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"error": "Not Found", "message": "Worker not found: w-9", "code": 404})
        );
        body.field = Some("code".into());
        assert_eq!(serde_json::to_value(&body).unwrap()["field"], "code");
    }
}
