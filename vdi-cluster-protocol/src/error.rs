//! The error body every endpoint answers with, on either side.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The error body of every endpoint (seed 004):
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
