//! The backend's own error type, converted into core's
//! [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable) at the trait
//! boundary with the source kept.

use std::error::Error as StdError;

use vdi_cluster_core::Error;

/// Why a Redis operation failed. Private: callers see
/// [`Error::Unavailable`] with this as its source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackendError {
    /// The command failed: connection refused or dropped, timed out, or an
    /// error reply. The driver's error is the source.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),

    /// A value stored in Redis could not be decoded.
    #[error("malformed {what} stored at {key}")]
    Malformed {
        /// The key that holds it.
        key: String,
        /// What was expected there.
        what: &'static str,
        /// Why it could not be decoded.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },

    /// A script answered something this version does not understand.
    #[error("unexpected reply from {script}.lua: {reply:?}")]
    UnexpectedReply {
        /// The script.
        script: &'static str,
        /// The reply's first element (its status word).
        reply: Option<String>,
    },
}

impl BackendError {
    /// A value at `key` that is not a valid `what`.
    pub(crate) fn malformed(
        key: impl Into<String>,
        what: &'static str,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Malformed {
            key: key.into(),
            what,
            source: Box::new(source),
        }
    }

    /// A reply of `script` whose status word is `reply`.
    pub(crate) fn unexpected(script: &'static str, reply: Option<&str>) -> Self {
        Self::UnexpectedReply {
            script,
            reply: reply.map(str::to_owned),
        }
    }
}

impl From<BackendError> for Error {
    fn from(value: BackendError) -> Self {
        Error::unavailable(value)
    }
}

/// A missing field of a stored record.
#[derive(Debug, thiserror::Error)]
#[error("field `{0}` is missing")]
pub(crate) struct MissingField(pub(crate) &'static str);

/// A field whose text is not one of the accepted values.
#[derive(Debug, thiserror::Error)]
#[error("field `{field}` has an unknown value")]
pub(crate) struct UnknownValue {
    /// The field.
    pub(crate) field: &'static str,
}

/// Shorthand for results inside the crate.
pub(crate) type BackendResult<T> = std::result::Result<T, BackendError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_unavailable_keeping_the_source() {
        let inner = MissingField("id");
        let err: Error = BackendError::malformed("vdi:x", "dispatch record", inner).into();
        let Error::Unavailable { source } = &err else {
            panic!("not unavailable: {err:?}");
        };
        let backend = source
            .downcast_ref::<BackendError>()
            .expect("backend error");
        assert!(matches!(backend, BackendError::Malformed { .. }));
        let root = StdError::source(backend).expect("source kept");
        assert!(root.downcast_ref::<MissingField>().is_some());
    }
}
