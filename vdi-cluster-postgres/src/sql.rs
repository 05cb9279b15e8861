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
    /// `vdi.ledger_append`: disruption ledger entries.
    LEDGER_APPEND = "ledger_append.sql";
    /// A session's ledger entries.
    DISRUPTIONS = "disruptions.sql";
    /// An exam's ledger entries.
    EXAM_DISRUPTIONS = "exam_disruptions.sql";
    /// Every exam with ledger entries.
    LEDGER_EXAMS = "ledger_exams.sql";
    /// Opens an interruption unless one of its kind is open.
    OPEN_INTERRUPTION = "open_interruption.sql";
    /// A session's open interruption of one kind.
    OPEN_INTERRUPTION_OF = "open_interruption_of.sql";
    /// A session's open interruptions.
    OPEN_INTERRUPTIONS = "open_interruptions.sql";
    /// Closes an open interruption if it is still the one stored.
    CLOSE_INTERRUPTION = "close_interruption.sql";
    /// Whether the server answers at all (no table read).
    SERVER_ANSWERS = "server_answers.sql";
    /// Readiness: a real read of the tables allocations read.
    PING = "ping.sql";
    /// One worker.
    WORKER = "worker.sql";
    /// Every worker.
    WORKERS = "workers.sql";
    /// Compare-and-set insert of a worker (expected: no record).
    INSERT_WORKER = "insert_worker.sql";
    /// Compare-and-set update of a worker.
    UPDATE_WORKER = "update_worker.sql";
    /// Compare-and-set update of a worker that also checks its dispatched
    /// count.
    UPDATE_WORKER_IF_DISPATCHED = "update_worker_if_dispatched.sql";
    /// A worker's current version.
    WORKER_VERSION = "worker_version.sql";
    /// `vdi.delete_worker`.
    DELETE_WORKER = "delete_worker.sql";
    /// `vdi.put_worker_releasing_lost`: a restarted worker's record and
    /// the release of what its report proves lost.
    PUT_WORKER_RELEASING_LOST = "put_worker_releasing_lost.sql";
    /// `vdi.compare_and_reserve`.
    RESERVE = "reserve.sql";
    /// `vdi.adopt`.
    ADOPT = "adopt.sql";
    /// `vdi.confirm`.
    CONFIRM = "confirm.sql";
    /// `vdi.confirm` over arrays: several confirmations, one commit.
    CONFIRM_MANY = "confirm_many.sql";
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
    /// The checkpoint saved beside a lease.
    LEASE_CHECKPOINT = "lease_checkpoint.sql";
    /// Save the checkpoint beside a lease, fenced by it.
    SAVE_LEASE_CHECKPOINT = "save_lease_checkpoint.sql";
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
    /// `vdi.claim_worker`: a join token's use and the worker's credential.
    CLAIM_WORKER = "claim_worker.sql";
    /// Compare-and-set insert of a worker's credential (expected: none).
    INSERT_WORKER_CREDENTIAL = "insert_worker_credential.sql";
    /// Compare-and-set update of a worker's credential.
    UPDATE_WORKER_CREDENTIAL = "update_worker_credential.sql";
    /// A worker's credential and its version.
    WORKER_CREDENTIAL = "worker_credential.sql";
    /// Every worker's credential (an export).
    WORKER_CREDENTIALS = "worker_credentials.sql";
    /// A worker's credential version.
    WORKER_CREDENTIAL_VERSION = "worker_credential_version.sql";
    /// Store an operators' page session, forgetting expired ones.
    PUT_OPERATOR_SESSION = "put_operator_session.sql";
    /// A live operators' page session.
    OPERATOR_SESSION = "operator_session.sql";
    /// End one operators' page session.
    END_OPERATOR_SESSION = "end_operator_session.sql";
    /// End every operators' page session.
    END_OPERATOR_SESSIONS = "end_operator_sessions.sql";
    /// A page of the audit trail, newest first, and its length.
    AUDIT_PAGE = "audit_page.sql";
    /// Every exam and the calendar's version.
    EXAM_CALENDAR = "exam_calendar.sql";
    /// Compare-and-set write of one exam on the calendar's version.
    PUT_EXAM = "put_exam.sql";
    /// Compare-and-set removal of one exam on the calendar's version.
    DELETE_EXAM = "delete_exam.sql";
    /// Lock a booked exam and read its at-risk flag.
    LOCK_EXAM_RISK = "lock_exam_risk.sql";
    /// Set an at-risk flag.
    SET_EXAM_RISK = "set_exam_risk.sql";
    /// Clear an at-risk flag.
    CLEAR_EXAM_RISK = "clear_exam_risk.sql";
    /// `vdi.queue_enqueue`.
    WAITING_ROOM_ENQUEUE = "waiting_room_enqueue.sql";
    /// `vdi.queue_touch`.
    WAITING_ROOM_TOUCH = "waiting_room_touch.sql";
    /// One exam's waiting room: its students, claim and totals, in one
    /// snapshot.
    WAITING_ROOM_READ = "waiting_room_read.sql";
    /// `vdi.queue_leave`.
    WAITING_ROOM_LEAVE = "waiting_room_leave.sql";
    /// `vdi.queue_claim`.
    WAITING_ROOM_CLAIM = "waiting_room_claim.sql";
    /// `vdi.queue_complete`.
    WAITING_ROOM_COMPLETE = "waiting_room_complete.sql";
    /// `vdi.queue_release`.
    WAITING_ROOM_RELEASE = "waiting_room_release.sql";
    /// `vdi.queue_abandon`.
    WAITING_ROOM_ABANDON = "waiting_room_abandon.sql";
    /// Exams with a waiting student.
    QUEUED_EXAMS = "queued_exams.sql";
    /// Compare-and-set of one scheduled action.
    PUT_SCHEDULED = "put_scheduled.sql";
    /// One scheduled action.
    SCHEDULED = "scheduled.sql";
    /// Open scheduled actions due by an instant, in time order.
    OPEN_SCHEDULED = "open_scheduled.sql";
    /// `vdi.start_permit_acquire`.
    START_PERMIT_ACQUIRE = "start_permit_acquire.sql";
    /// `vdi.start_permit_release`.
    START_PERMIT_RELEASE = "start_permit_release.sql";
    /// A worker's permits, queue and last starts.
    START_QUEUE = "start_queue.sql";
    /// Store a webhook endpoint unless its id is taken.
    PUT_WEBHOOK = "put_webhook.sql";
    /// Every webhook endpoint, oldest first.
    WEBHOOKS = "webhooks.sql";
    /// Delete a webhook endpoint.
    DELETE_WEBHOOK = "delete_webhook.sql";
    /// Fenced `vdi.outbox_append`.
    OUTBOX_ENQUEUE = "outbox_enqueue.sql";
    /// `vdi.outbox_append`, inside a transaction that writes its cause.
    OUTBOX_APPEND = "outbox_append.sql";
    /// Lease due deliveries.
    OUTBOX_LEASE = "outbox_lease.sql";
    /// `vdi.outbox_finish`.
    OUTBOX_FINISH = "outbox_finish.sql";
    /// A page of an endpoint's deliveries, newest first, and how many.
    DELIVERY_PAGE = "delivery_page.sql";
    /// A failed delivery, due again.
    RETRY_DELIVERY = "retry_delivery.sql";
    /// Delivered and failed deliveries past the retention, deleted.
    PURGE_DELIVERIES = "purge_deliveries.sql";
    /// Every capacity request with its version.
    CAPACITY_REQUESTS = "capacity_requests.sql";
    /// A capacity request stored if none with its id is.
    INSERT_CAPACITY_REQUEST = "insert_capacity_request.sql";
    /// Compare-and-set of a capacity request on its version.
    UPDATE_CAPACITY_REQUEST = "update_capacity_request.sql";
    /// An exam's rehearsal with its version.
    REHEARSAL = "rehearsal.sql";
    /// Every rehearsal with its version.
    REHEARSALS = "rehearsals.sql";
    /// A rehearsal stored if absent, or compare-and-set on its version.
    PUT_REHEARSAL = "put_rehearsal.sql";
    /// A rehearsal deleted if its version is still the one read.
    REMOVE_REHEARSAL = "remove_rehearsal.sql";
}
