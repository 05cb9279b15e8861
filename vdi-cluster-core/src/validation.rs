//! [`ValidationError`]: bad input, naming the field that is wrong.
//!
//! A leaf: every domain module validates its input with it, so it imports
//! nothing of the crate.

/// Bad input, naming the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field, in the API's camelCase spelling (`vmCpuCores`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
