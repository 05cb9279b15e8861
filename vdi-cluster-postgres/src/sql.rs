//! The SQL text of every statement, kept in `sql/*.sql` files.
//!
//! Every statement binds its values (`$1`, `$2`, …); none is assembled from
//! strings at run time. The multi-row atomic steps are PL/pgSQL functions
//! created by the migrations; their files here are the one-line calls.

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $file:literal;)*) => {
        $(
            $(#[$doc])*
            pub(crate) const $name: &str = include_str!(concat!("../sql/", $file));
        )*
    };
}

statements! {
    /// Whether the server answers.
    PING = "ping.sql";
    /// One worker.
    WORKER = "worker.sql";
    /// Every worker.
    WORKERS = "workers.sql";
    /// Compare-and-set insert of a worker (expected: no record).
    INSERT_WORKER = "insert_worker.sql";
    /// Compare-and-set update of a worker.
    UPDATE_WORKER = "update_worker.sql";
    /// A worker's current version.
    WORKER_VERSION = "worker_version.sql";
    /// `vdi.delete_worker`.
    DELETE_WORKER = "delete_worker.sql";
    /// `vdi.reserve`.
    RESERVE = "reserve.sql";
    /// `vdi.adopt`.
    ADOPT = "adopt.sql";
    /// `vdi.confirm`.
    CONFIRM = "confirm.sql";
    /// `vdi.remove_dispatch` (release and undo).
    REMOVE_DISPATCH = "remove_dispatch.sql";
    /// Marks a dispatch orphaned.
    MARK_ORPHANED = "mark_orphaned.sql";
    /// One session's dispatch.
    DISPATCH = "dispatch.sql";
    /// Dispatches on one worker.
    WORKER_DISPATCHES = "worker_dispatches.sql";
    /// First page of a dispatch scan.
    SCAN_FIRST = "scan_first.sql";
    /// Later pages of a dispatch scan.
    SCAN_AFTER = "scan_after.sql";
    /// Sticky worker and affinity of an exam.
    PLACEMENT = "placement.sql";
    /// Every counter against a recount, in one snapshot.
    RECOUNT = "recount.sql";
    /// `vdi.repair_worker`.
    REPAIR_WORKER = "repair_worker.sql";
    /// Dispatches in a state, oldest reservation first.
    DISPATCHES_BY_AGE = "dispatches_by_age.sql";
    /// Acquire or renew a lease.
    ACQUIRE_LEASE = "acquire_lease.sql";
    /// Give a lease up.
    RELEASE_LEASE = "release_lease.sql";
    /// Append an audit entry.
    APPEND_AUDIT = "append_audit.sql";
    /// Store a join token unless its id or hash is taken.
    PUT_JOIN_TOKEN = "put_join_token.sql";
    /// Count one use of a valid join token.
    REDEEM_JOIN_TOKEN = "redeem_join_token.sql";
    /// Every join token, newest first.
    JOIN_TOKENS = "join_tokens.sql";
    /// Delete a join token.
    REVOKE_JOIN_TOKEN = "revoke_join_token.sql";
    /// Set a worker's credential.
    PUT_WORKER_CREDENTIAL = "put_worker_credential.sql";
    /// A worker's credential.
    WORKER_CREDENTIAL = "worker_credential.sql";
    /// Newest audit entries.
    RECENT_AUDIT = "recent_audit.sql";
}
