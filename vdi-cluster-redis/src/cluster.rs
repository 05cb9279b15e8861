//! Redis Cluster: the cluster protocol, with every key of the store in one
//! hash slot.
//!
//! A deployment that runs Redis Cluster (as several managed offerings do)
//! names its nodes (some are enough):
//!
//! ```text
//! redis+cluster://[[user]:password@]host1[:port1],host2[:port2],…[/]
//! ```
//!
//! A node's port defaults to 6379; the client learns the rest of the
//! cluster from them and follows its slot map (`MOVED`, `ASK`). When a
//! request finds the slot's primary gone, or the cluster answers that it
//! is reconfiguring (`CLUSTERDOWN`, `TRYAGAIN`, a demoted node's
//! `READONLY`), the store asks the cluster for its slot map again with a
//! new connection, in the background, at most once per [`LOOK_INTERVAL`]
//! per failed connection ([`ClusterLink`]): once the cluster has promoted
//! the replica, requests go there. The store's atomic steps are Lua
//! scripts and `MULTI` blocks over many keys, which Redis Cluster runs only
//! when every key is in one slot: so the store's keys carry one hash tag,
//! the prefix in braces (`{vdi}:worker:…`, see [`hash_tagged`]), and every
//! request is sent to the primary of that slot. A store is thereby served
//! by one shard (with its replicas); several deployments, or several
//! prefixes, spread over the cluster's shards.

use std::fmt;
use std::sync::RwLock;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SlotAddr};
use redis::{ErrorKind, RedisError, ServerErrorKind};
use tokio::sync::Mutex;
use tokio::time::Instant;
use vdi_cluster_core::{Error, Result};

pub(crate) use crate::failover::LOOK_INTERVAL;

/// The URL scheme that selects Redis Cluster.
pub const CLUSTER_SCHEME: &str = "redis+cluster";

/// A node's port when the URL names none.
const DEFAULT_PORT: u16 = 6379;

/// Whether `url` selects Redis Cluster.
pub(crate) fn selected_by(url: &str) -> bool {
    url.trim()
        .get(..CLUSTER_SCHEME.len() + 3)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(&format!("{CLUSTER_SCHEME}://")))
}

/// `prefix` with a hash tag: unchanged if it has one (`{vdi}`,
/// `exam:{vdi}`), else in braces (`vdi` → `{vdi}`).
pub fn hash_tagged(prefix: &str) -> String {
    let tagged = prefix
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty());
    if tagged {
        prefix.to_owned()
    } else {
        format!("{{{prefix}}}")
    }
}

/// The route of every request of a store whose keys start with `prefix`
/// (hash-tagged): the primary of the tag's slot.
pub(crate) fn route_of(prefix: &str) -> Route {
    Route::with_key(prefix, SlotAddr::Master)
}

/// The cluster's connection, renewed when the cluster changed under it.
pub(crate) struct ClusterLink {
    client: ClusterClient,
    connect_timeout: Duration,
    /// The primary of the store's slot.
    pub(crate) slot: Route,
    /// The connection and its generation (renewals so far).
    current: RwLock<(u64, ClusterConnection)>,
    /// Held while renewing; the last renewal's failed generation and time.
    renewing: Mutex<Option<(u64, Instant)>>,
}

impl fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterLink")
            .field("slot", &self.slot)
            .field("generation", &self.current().0)
            .finish_non_exhaustive()
    }
}

impl ClusterLink {
    /// Connects to the cluster (learning its slot map) within
    /// `connect_timeout`.
    pub(crate) async fn connect(
        client: ClusterClient,
        prefix: &str,
        connect_timeout: Duration,
    ) -> Result<Self> {
        let connection = open(&client, connect_timeout).await?;
        Ok(Self {
            client,
            connect_timeout,
            slot: route_of(prefix),
            current: RwLock::new((0, connection)),
            renewing: Mutex::new(None),
        })
    }

    /// The connection to send on, and its generation.
    pub(crate) fn current(&self) -> (u64, ClusterConnection) {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Opens a new connection (a fresh slot map) because the one of
    /// `failed` generation failed; nothing when another request already
    /// renewed it, or when that generation was renewed less than
    /// [`LOOK_INTERVAL`] ago.
    pub(crate) async fn renew(&self, failed: u64) {
        let mut last = self.renewing.lock().await;
        if self.current().0 != failed
            || last.is_some_and(|(about, at)| about == failed && at.elapsed() < LOOK_INTERVAL)
        {
            return;
        }
        *last = Some((failed, Instant::now()));
        match open(&self.client, self.connect_timeout).await {
            Ok(connection) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = (failed + 1, connection);
                tracing::info!(
                    generation = failed + 1,
                    "reconnected to the Redis Cluster for its new slot map"
                );
            }
            Err(e) => tracing::warn!(error = %e, "could not reconnect to the Redis Cluster"),
        }
    }
}

async fn open(client: &ClusterClient, timeout: Duration) -> Result<ClusterConnection> {
    tokio::time::timeout(timeout, client.get_async_connection())
        .await
        .map_err(Error::unavailable)?
        .map_err(|e| Error::unavailable(crate::error::BackendError::from(e)))
}

/// Whether `error` says the cluster changed under the connection: the
/// slot's primary gone or demoted, or the cluster reconfiguring.
pub(crate) fn changed(error: &RedisError) -> bool {
    error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::Moved
            )
        )
}

/// A cluster client for the nodes of `url`, with the store's timeouts.
pub(crate) fn client(url: &str, connect: Duration, response: Duration) -> Result<ClusterClient> {
    let rest = &url.trim()[CLUSTER_SCHEME.len() + 3..];
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, query),
        None => (rest, ""),
    };
    if !query.is_empty() {
        return Err(invalid("takes no query"));
    }
    let authority = match rest.split_once('/') {
        Some((authority, "" | "0")) => authority,
        Some(_) => return Err(invalid("Redis Cluster has only database 0")),
        None => rest,
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes = hosts
        .split(',')
        .map(|host| {
            if host.is_empty() {
                return Err(invalid("a node address is empty"));
            }
            let has_port = match host.rsplit_once(']') {
                Some((_, after)) => after.starts_with(':'),
                None => host.contains(':'),
            };
            Ok(if has_port {
                format!("redis://{userinfo}{host}")
            } else {
                format!("redis://{userinfo}{host}:{DEFAULT_PORT}")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    ClusterClient::builder(nodes)
        .connection_timeout(connect)
        .response_timeout(response)
        .retries(2)
        .build()
        // The driver's message may quote a node's URL, password included.
        .map_err(|_| invalid("a node address is not host[:port]"))
}

fn invalid(why: &str) -> Error {
    Error::invalid(
        "url",
        format!("{why}: use {CLUSTER_SCHEME}://[[user]:password@]host[:port],host[:port],…"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_gets_one_hash_tag() {
        assert_eq!(hash_tagged("vdi"), "{vdi}");
        assert_eq!(hash_tagged("{vdi}"), "{vdi}");
        assert_eq!(hash_tagged("exam:{vdi}"), "exam:{vdi}");
        assert_eq!(hash_tagged("{}x"), "{{}x}");
    }

    #[test]
    fn every_key_of_a_store_is_routed_to_one_slot() {
        let route = route_of("{vdi}");
        for key in ["{vdi}:worker:w1", "{vdi}:dispatched", "{vdi}:queue:exam-1"] {
            assert_eq!(Route::with_key(key, SlotAddr::Master), route, "{key}");
        }
    }

    #[test]
    fn urls() {
        assert!(selected_by("REDIS+CLUSTER://a,b"));
        assert!(!selected_by("redis://a"));
        let timeout = Duration::from_secs(1);
        for url in [
            "redis+cluster://10.0.0.1:7000,10.0.0.2",
            "redis+cluster://:pw@[::1]:7000,h/",
            "redis+cluster://user:pw@h1:7000/0",
        ] {
            assert!(client(url, timeout, timeout).is_ok(), "{url}");
        }
        for url in [
            "redis+cluster://h1,,h2",
            "redis+cluster://h1/3",
            "redis+cluster://h1?x=1",
            "redis+cluster://:hunter2@h1:port",
        ] {
            let err = client(url, timeout, timeout).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid(v) if v.field == "url"),
                "{url}"
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
