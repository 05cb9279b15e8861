//! The backend's private error type and its conversion into core's
//! [`Error`].
//!
//! Every failure to talk to PostgreSQL, or an answer this crate cannot make
//! sense of, becomes [`Error::Unavailable`] with the [`PgError`] as its
//! source (which in turn keeps the driver's error as its source).

use std::time::Duration;

use vdi_cluster_core::{Error, ValidationError};

/// What went wrong inside the PostgreSQL backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PgError {
    /// The driver failed: no connection within the acquire timeout, the
    /// connection broke, the statement timed out on the server, …
    #[error("PostgreSQL request failed: {0}")]
    Sqlx(#[from] sqlx::Error),

    /// The whole call took longer than the store's call timeout (a server
    /// that accepts connections but never answers).
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),

    /// Every connection of the call's lane was taken, a call of the lane
    /// found the server gone, and none answered for this long: the call
    /// does not wait for a connection (see `lanes`).
    #[error("PostgreSQL went away and answered no call for {0:?}; every connection is taken")]
    Stalled(Duration),

    /// Applying the embedded migrations failed.
    #[error("migrating the vdi schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A stored identifier does not validate (the database was written by
    /// something other than this crate).
    #[error("stored {what} is not valid: {source}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it is invalid.
        #[source]
        source: ValidationError,
    },

    /// A function answered with an outcome this crate does not know (the
    /// schema is newer or older than the code).
    #[error("PostgreSQL function {function} answered an unknown outcome {outcome:?}")]
    UnknownOutcome {
        /// The function.
        function: &'static str,
        /// What it answered.
        outcome: String,
    },

    /// A confirmation was queued for a batch whose writing task ended
    /// without answering it (the runtime shutting down).
    #[error("the batch holding this confirmation ended without an answer")]
    BatchLost,

    /// A stored number does not fit the type core uses for it.
    #[error("PostgreSQL returned an out-of-range {what}: {value}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: i64,
    },
}

impl From<PgError> for Error {
    fn from(error: PgError) -> Self {
        Error::unavailable(error)
    }
}

/// Whether `error` is PostgreSQL's `serialization_failure`, which
/// `vdi.compare_and_reserve` raises when the session's dispatch kept changing under it.
pub(crate) fn is_serialization_failure(error: &PgError) -> bool {
    match error {
        PgError::Sqlx(sqlx::Error::Database(db)) => db.code().as_deref() == Some("40001"),
        _ => false,
    }
}

/// The refusal of a connection to a server that is not writable.
pub(crate) const NOT_WRITABLE: &str =
    "the server is a standby or read-only (target_session_attrs=read-write)";

/// Whether `error` says the server the call used is gone or is no longer
/// the primary, rather than anything about the call itself.
pub(crate) fn primary_gone(error: &PgError) -> bool {
    match error {
        PgError::Timeout(_) => true,
        PgError::Sqlx(error) => match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Protocol(message) => message == NOT_WRITABLE,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // 08: connection exception; 57P01-03: the server shutting
                // down or starting; 25006: a write to a read-only server.
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "25006")
            }),
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_gone_or_demoted_server_is_told_from_a_bad_call() {
        let gone = [
            PgError::Timeout(Duration::from_secs(1)),
            PgError::Sqlx(sqlx::Error::PoolTimedOut),
            PgError::Sqlx(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())),
            PgError::Sqlx(sqlx::Error::Protocol(NOT_WRITABLE.to_owned())),
        ];
        for error in &gone {
            assert!(primary_gone(error), "{error}");
        }
        let not = [
            PgError::Sqlx(sqlx::Error::RowNotFound),
            PgError::Sqlx(sqlx::Error::PoolClosed),
            PgError::Sqlx(sqlx::Error::Protocol("unexpected message".to_owned())),
            PgError::BatchLost,
        ];
        for error in &not {
            assert!(!primary_gone(error), "{error}");
        }
    }

    #[test]
    fn unavailable_keeps_the_source() {
        let error: Error = PgError::Sqlx(sqlx::Error::PoolTimedOut).into();
        let Error::Unavailable { source } = &error else {
            panic!("not unavailable: {error:?}")
        };
        let pg = source.downcast_ref::<PgError>().expect("a PgError source");
        assert!(matches!(pg, PgError::Sqlx(sqlx::Error::PoolTimedOut)));
        assert!(pg.source().is_some(), "the driver error is kept as source");
    }

    #[test]
    fn only_serialization_failures_are_conflicts() {
        assert!(!is_serialization_failure(&PgError::Timeout(
            Duration::from_secs(1)
        )));
        assert!(!is_serialization_failure(&PgError::Sqlx(
            sqlx::Error::PoolClosed
        )));
    }
}
