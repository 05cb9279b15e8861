//! [`RedisStore`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use vdi_cluster_core::{Error, Result};

use crate::cluster;
use crate::conn::{Conn, Route, WaitReplicas};
use crate::error::BackendError;
use crate::failover::Failover;
use crate::keys::{DEFAULT_PREFIX, Keys};
use crate::lanes::{Lanes, WAIT_LANES};
use crate::sentinel::Sentinels;

/// Default bound on one request to Redis, including any wait for a
/// reconnection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Default bound on one attempt to open a connection.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Default number of audit entries kept.
pub const DEFAULT_AUDIT_KEPT: usize = 10_000;

/// The Redis backend: a [`Store`](vdi_cluster_core::Store) on one Redis
/// server (or anything speaking its protocol with Lua scripting).
///
/// A handle owns one multiplexed connection that reconnects by itself; it
/// is cheap to clone (clones share the connection) and safe to use from any
/// number of tasks. Build one per process with [`RedisStore::builder`];
/// any number of processes may share the same server and prefix.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) conn: Conn,
    pub(crate) keys: Keys,
    pub(crate) audit_kept: usize,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .field("conn", &self.conn)
            .field("audit_kept", &self.audit_kept)
            .finish()
    }
}

impl RedisStore {
    /// Starts configuring a store on the server at `url`
    /// (`redis://[:password@]host[:port][/db]`, `rediss://…` is not
    /// compiled in), on the primary that Redis Sentinel names
    /// (`redis+sentinel://[[user]:password@]host[:port],…/master[/db]`, see
    /// [`SENTINEL_SCHEME`](crate::SENTINEL_SCHEME)), or on a Redis Cluster
    /// (`redis+cluster://[[user]:password@]host[:port],…`, see
    /// [`CLUSTER_SCHEME`](crate::CLUSTER_SCHEME); the prefix then gets a
    /// hash tag, [`hash_tagged`](crate::hash_tagged)).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target: Target::Url(url.into()),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            audit_kept: DEFAULT_AUDIT_KEPT,
            wait: None,
        }
    }

    /// Connects to `url` with every default (prefix `vdi`).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Requests (round trips) this handle and its clones have sent to
    /// Redis so far: one per command, pipeline or script call, plus one
    /// per script (re)load after a server restart. For metrics and tests.
    pub fn round_trips(&self) -> u64 {
        self.conn.round_trips()
    }

    /// The primary's `host:port` when it is found through Sentinel (once
    /// found); `None` for a single server.
    pub fn primary(&self) -> Option<String> {
        self.conn.failover().and_then(Failover::primary)
    }

    /// Times this handle (and its clones) moved to another primary after a
    /// failover; 0 for a single server.
    pub fn primary_switches(&self) -> u64 {
        self.conn.failover().map_or(0, Failover::switches)
    }

    /// A connection handle to send one request on.
    pub(crate) fn conn(&self) -> Conn {
        self.conn.clone()
    }
}

#[derive(Clone)]
enum Target {
    Url(String),
    Client(redis::Client),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(&redact(url)).finish(),
            Self::Client(client) => f.debug_tuple("Client").field(client).finish(),
        }
    }
}

/// `url` with any credentials replaced, for logs.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some(at) = rest.rfind('@')
    {
        return format!("{scheme}://<redacted>{}", &rest[at..]);
    }
    url.to_owned()
}

/// What a URL or client names: one server, or the primary of a Sentinel
/// deployment.
enum Server {
    One(redis::Client),
    Sentinel(Sentinels),
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// Configures and connects a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    timeout: Duration,
    connection_timeout: Duration,
    audit_kept: usize,
    wait: Option<WaitReplicas>,
}

impl RedisStoreBuilder {
    /// Uses an already configured client (TLS, credentials, RESP3) instead
    /// of a URL.
    pub fn client(mut self, client: redis::Client) -> Self {
        self.target = Target::Client(client);
        self
    }

    /// Key prefix (default `vdi`): 1 to 64 ASCII letters, digits, `.`, `_`,
    /// `-`, `:`, `{` or `}`. Stores with different prefixes share nothing;
    /// prefixes of one server must not be prefixes of each other followed
    /// by `:` (`vdi` and `vdi:worker`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bound on one request, including any wait for a reconnection
    /// (default 3 s). While Redis is down every call fails with
    /// [`Error::Unavailable`] within about this time.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Bound on one attempt to open a connection (default 1 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Audit entries kept, newest first (default 10 000).
    pub fn audit_kept(mut self, kept: usize) -> Self {
        self.audit_kept = kept.max(1);
        self
    }

    /// After every request, wait until `replicas` replicas have
    /// acknowledged the writes so far (Redis' `WAIT`), for at most
    /// `timeout`; a write fewer replicas acknowledged in time fails with
    /// [`Error::Unavailable`] (it is on the primary, but a failover before
    /// it replicates would lose it). Off by default: Redis replicates
    /// asynchronously, and a failover may lose the last acknowledged
    /// writes, which the fleet's heartbeats then repair.
    pub fn wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = (replicas > 0).then_some(WaitReplicas { replicas, timeout });
        self
    }

    fn parts(mut self) -> Result<(Server, ConnectionManagerConfig, Keys, Self)> {
        if matches!(&self.target, Target::Url(url) if cluster::selected_by(url)) {
            self.prefix = cluster::hash_tagged(&self.prefix);
        }
        let keys = Keys::new(&self.prefix)?;
        if self.timeout.is_zero() {
            return Err(Error::invalid("timeout", "must be positive"));
        }
        if self.connection_timeout.is_zero() {
            return Err(Error::invalid("connectionTimeout", "must be positive"));
        }
        if self.wait.is_some_and(|wait| wait.timeout.is_zero()) {
            return Err(Error::invalid("waitReplicasTimeout", "must be positive"));
        }
        let server = match &self.target {
            Target::Url(url) if Sentinels::selected_by(url) => {
                Server::Sentinel(Sentinels::parse(url)?)
            }
            Target::Url(url) if cluster::selected_by(url) => Server::Cluster(Box::new(
                cluster::client(url, self.connection_timeout, self.timeout)?,
            )),
            Target::Url(url) => Server::One(redis::Client::open(url.as_str()).map_err(|_| {
                // The driver's message may quote the URL, password included.
                Error::invalid(
                    "url",
                    "must be redis://[[user]:password@]host[:port][/db], redis+unix:///path, redis+sentinel://host[:port],…/master[/db] or redis+cluster://host[:port],…",
                )
            })?),
            Target::Client(client) => Server::One(client.clone()),
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        Ok((server, config, keys, self))
    }

    /// Connections to open to the server: one, or a lane per step that
    /// may wait for replicas at the same time ([`crate::lanes`]).
    fn lanes(&self) -> usize {
        if self.wait.is_some() { WAIT_LANES } else { 1 }
    }

    fn store(self, route: Route, keys: Keys) -> RedisStore {
        RedisStore {
            conn: Conn::new(route, self.timeout, self.wait),
            keys,
            audit_kept: self.audit_kept,
        }
    }

    /// Connects now: fails with [`Error::Unavailable`] if Redis (or,
    /// through Sentinel, a primary) cannot be reached within the timeout,
    /// or [`Error::Invalid`] for a bad URL or prefix.
    pub async fn connect(self) -> Result<RedisStore> {
        let (server, config, keys, this) = self.parts()?;
        let route = match server {
            Server::One(client) => Route::Fixed(
                tokio::time::timeout(this.timeout, Lanes::connect(client, config, this.lanes()))
                    .await
                    .map_err(Error::unavailable)?
                    .map_err(BackendError::from)?,
            ),
            Server::Sentinel(sentinels) => {
                let failover =
                    Failover::new(sentinels, config, this.lanes(), this.connection_timeout);
                failover.current().await.map_err(Error::unavailable)?;
                Route::Sentinel(Arc::new(failover))
            }
            Server::Cluster(client) => Route::Cluster(Arc::new(
                cluster::ClusterLink::connect(*client, keys.prefix(), this.timeout).await?,
            )),
        };
        Ok(this.store(route, keys))
    }

    /// Builds the store without contacting Redis; the connection opens on
    /// first use (a control plane may start before its Redis). Must be
    /// called inside a Tokio runtime.
    pub fn connect_lazy(self) -> Result<RedisStore> {
        tokio::runtime::Handle::try_current().map_err(Error::unavailable)?;
        let (server, config, keys, this) = self.parts()?;
        let route = match server {
            Server::One(client) => {
                Route::Fixed(Lanes::lazy(client, config, this.lanes()).map_err(BackendError::from)?)
            }
            Server::Sentinel(sentinels) => Route::Sentinel(Arc::new(Failover::new(
                sentinels,
                config,
                this.lanes(),
                this.connection_timeout,
            ))),
            Server::Cluster(_) => {
                return Err(Error::invalid(
                    "url",
                    "a Redis Cluster store connects at once: use connect()",
                ));
            }
        };
        Ok(this.store(route, keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        assert_eq!(
            redact("redis://user:secret@10.0.0.5:6379/0"),
            "redis://<redacted>@10.0.0.5:6379/0"
        );
        assert_eq!(redact("redis://:pw@host"), "redis://<redacted>@host");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let builder = RedisStore::builder("redis://:hunter2@localhost");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }
}
