//! Connection pool settings and the timeouts that bound every call.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Default largest number of connections of a store's pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// Default number of connections of the liveness lane's pool (heartbeats,
/// registrations, the leader lease), beside the general pool.
pub const DEFAULT_LIVENESS_CONNECTIONS: u32 = 3;
/// Default time without an answer to any call of a lane whose connections
/// are all taken and whose server went away, after which waiting for one
/// fails at once.
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(1);
/// Default time to wait for a pooled connection (or a new one).
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default server-side `statement_timeout`.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack added to acquire + statement timeouts for the client-side bound of
/// one call (network round trips, connection checks).
pub const CALL_TIMEOUT_SLACK: Duration = Duration::from_secs(2);

/// How a [`PgStore`](crate::PgStore) connects.
///
/// While PostgreSQL is down or unreachable every call fails with
/// [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable) after at most
/// the [call timeout](Self::call_timeout): waiting for a connection is
/// bounded by the acquire timeout, a statement by the server's
/// `statement_timeout` (set on every connection), and the whole call by a
/// client-side timeout on top of both. Broken connections are tested and
/// replaced by the pool, so the store works again by itself once the server
/// is back.
///
/// The liveness lane — worker heartbeats and registrations, the leader
/// lease — has a small pool of its own
/// ([`liveness_connections`](Self::liveness_connections)), so it never
/// waits behind students' allocations. A call that finds every connection
/// of its lane taken waits for one up to the acquire timeout, and fails
/// at once when a call of the lane found the server gone and none has
/// answered for [`stalled_after`](Self::stalled_after) (see the crate's
/// docs on connections).
///
/// ```
/// use std::time::Duration;
/// use vdi_cluster_postgres::PgStoreConfig;
///
/// let config = PgStoreConfig::default()
///     .max_connections(32)
///     .acquire_timeout(Duration::from_secs(2))
///     .statement_timeout(Duration::from_secs(3));
/// assert_eq!(config.call_timeout(), Duration::from_secs(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStoreConfig {
    max_connections: u32,
    liveness_connections: u32,
    stalled_after: Duration,
    min_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    test_before_acquire: bool,
    application_name: String,
}

impl Default for PgStoreConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            liveness_connections: DEFAULT_LIVENESS_CONNECTIONS,
            stalled_after: DEFAULT_STALLED_AFTER,
            min_connections: 0,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            test_before_acquire: true,
            application_name: "vdi-cluster".to_owned(),
        }
    }
}

impl PgStoreConfig {
    /// Largest number of pooled connections (at least 1; default 10).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Connections of the liveness lane's pool, on top of
    /// [`max_connections`](Self::max_connections) (at least 1; default 3):
    /// heartbeats, registrations and the leader lease use only these.
    pub fn liveness_connections(mut self, n: u32) -> Self {
        self.liveness_connections = n.max(1);
        self
    }

    /// How long a lane whose connections are all taken, and one of whose
    /// calls found the server gone (connection reset or refused, the
    /// server shutting down, a timeout), may go without any of its calls
    /// answering before a call waiting for a connection fails with
    /// [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable) at
    /// once rather than at the acquire timeout (default 1 s; at least
    /// 1 ms). A lane whose server is only slow never refuses: a surge
    /// waits in line as it always did.
    pub fn stalled_after(mut self, after: Duration) -> Self {
        self.stalled_after = after.max(Duration::from_millis(1));
        self
    }

    /// Connections each pool keeps open even when idle (default 0; at
    /// most the pool's size).
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Longest wait for a connection, including connecting (default 5 s).
    /// While the server is down, calls fail after this long.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The server-side `statement_timeout` of every connection, including
    /// time spent waiting for row locks (default 5 s; at least 1 ms).
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Closes connections idle for longer (default 10 min; `None`: never).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Replaces connections older than this (default 30 min; `None`: never).
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Whether an idle connection is checked (one extra round trip) before
    /// a call uses it (default `true`). With the check, no call fails on a
    /// connection that broke while idle — after a server restart the first
    /// calls already succeed. Without it, each such connection fails one
    /// call with [`Error::Unavailable`](vdi_cluster_core::Error::Unavailable)
    /// and is replaced; that saves a round trip per call where throughput
    /// matters more. (Connections are always checked when they go back to
    /// the pool.)
    pub fn test_before_acquire(mut self, test: bool) -> Self {
        self.test_before_acquire = test;
        self
    }

    /// `application_name` shown in `pg_stat_activity` (default
    /// `vdi-cluster`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// The client-side bound of one call: acquire timeout + statement
    /// timeout + [`CALL_TIMEOUT_SLACK`].
    pub fn call_timeout(&self) -> Duration {
        self.acquire_timeout + self.statement_timeout + CALL_TIMEOUT_SLACK
    }

    /// `options` with this configuration's per-connection settings.
    pub(crate) fn connect_options(&self, options: PgConnectOptions) -> PgConnectOptions {
        let statement_ms = self.statement_timeout.as_millis().to_string();
        options.application_name(&self.application_name).options([
            ("statement_timeout", statement_ms.as_str()),
            // A transaction left open by a vanished client would hold
            // its row locks; none of ours spans more than one call.
            ("idle_in_transaction_session_timeout", "60000"),
        ])
    }

    /// How long a lane may stall (see [`stalled_after`](Self::stalled_after)).
    pub(crate) fn stalled_after_bound(&self) -> Duration {
        self.stalled_after
    }

    /// Options of the general pool.
    pub(crate) fn pool_options(&self) -> PgPoolOptions {
        self.sized(self.max_connections)
    }

    /// Options of the liveness lane's pool.
    pub(crate) fn liveness_pool_options(&self) -> PgPoolOptions {
        self.sized(self.liveness_connections)
    }

    /// Pool options of this configuration, for a pool of `size`.
    fn sized(&self, size: u32) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(size)
            .min_connections(self.min_connections.min(size))
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            .test_before_acquire(self.test_before_acquire)
    }
}
