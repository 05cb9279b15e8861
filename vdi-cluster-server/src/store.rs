//! Store selection from `--store URL`, in one place.
//!
//! | URL | backend |
//! |---|---|
//! | `memory` (the default) | [`MemoryStore`]: embedded, nothing to set up, lost on exit |
//! | `redis://[:password@]host[:port][/db]` | `vdi-cluster-redis`, keys under `--redis-prefix` (default `vdi`) |
//! | `redis+sentinel://[:password@]host[:port],…/master[/db]` | the same, on the primary Redis Sentinel names, followed across failovers |
//! | `redis+cluster://[:password@]host[:port],…` | the same, on a Redis Cluster: the prefix gets a hash tag (`{vdi}`), so the store's keys are in one slot |
//! | `postgres://…` or `postgresql://…` | `vdi-cluster-postgres` (a host list `h1,h2` follows the writable one); migrations are applied at start |
//!
//! The backend is reached at start: a control plane that cannot reach its
//! store refuses to start rather than answer 503 to everything.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::{MemoryStore, Store};
use vdi_cluster_postgres::PgStore;
use vdi_cluster_redis::RedisStore;

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In-memory.
    Memory,
    /// Redis.
    Redis,
    /// PostgreSQL.
    Postgres,
}

impl StoreKind {
    /// Reads the scheme of `url`.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        let lower = url.trim().to_ascii_lowercase();
        if lower == "memory" || lower == "memory://" {
            Ok(Self::Memory)
        } else if lower.starts_with("redis://")
            || lower.starts_with("rediss://")
            || lower.starts_with("redis+sentinel://")
            || lower.starts_with("redis+cluster://")
        {
            Ok(Self::Redis)
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::UnknownScheme(redact(url)))
        }
    }

    /// `memory`, `redis` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }
}

/// Options of the backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Redis key prefix.
    pub redis_prefix: String,
    /// Replicas that must acknowledge each Redis step (`WAIT`); 0: none.
    pub redis_wait_replicas: u32,
    /// How long a Redis step waits for them.
    pub redis_wait_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            redis_prefix: "vdi".into(),
            redis_wait_replicas: 0,
            redis_wait_timeout: Duration::from_secs(1),
        }
    }
}

/// A connected store.
#[derive(Debug, Clone)]
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Its backend.
    pub kind: StoreKind,
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Neither `memory` nor a known URL scheme.
    #[error("unknown store {0:?}: use memory, redis://…, redis+sentinel://… or postgres://…")]
    UnknownScheme(String),
    /// The backend refused or could not be reached.
    #[error("cannot open the {backend} store at {url}: {source}")]
    Open {
        /// `redis` or `postgres`.
        backend: &'static str,
        /// The URL, password hidden.
        url: String,
        /// Why.
        #[source]
        source: vdi_cluster_core::Error,
    },
}

/// `url` with its passwords (of the user, and a sentinel's in the query)
/// replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if let Some((rest, query)) = rest.split_once('?') {
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.contains("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        return format!("{}?{query}", redact(&format!("{scheme}://{rest}")));
    }
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Opens the store `url` selects.
pub async fn open_store(url: &str, options: &StoreOptions) -> Result<OpenedStore, StoreError> {
    let kind = StoreKind::of(url)?;
    let open_error = |source| StoreError::Open {
        backend: kind.name(),
        url: redact(url),
        source,
    };
    let store: Arc<dyn Store> = match kind {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Redis => Arc::new(
            RedisStore::builder(url.trim())
                .prefix(options.redis_prefix.clone())
                .wait_replicas(options.redis_wait_replicas, options.redis_wait_timeout)
                .connect()
                .await
                .map_err(open_error)?,
        ),
        StoreKind::Postgres => {
            let store = PgStore::connect(url.trim()).await.map_err(open_error)?;
            store.migrate().await.map_err(open_error)?;
            Arc::new(store)
        }
    };
    Ok(OpenedStore { store, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(StoreKind::of("memory").unwrap(), StoreKind::Memory);
        assert_eq!(
            StoreKind::of("redis://127.0.0.1").unwrap(),
            StoreKind::Redis
        );
        assert_eq!(
            StoreKind::of("REDIS+SENTINEL://s1,s2/exam").unwrap(),
            StoreKind::Redis
        );
        assert_eq!(
            StoreKind::of("redis+cluster://n1:7000,n2:7000").unwrap(),
            StoreKind::Redis
        );
        assert_eq!(
            StoreKind::of("postgresql://x/y").unwrap(),
            StoreKind::Postgres
        );
        assert!(StoreKind::of("mysql://u:secret@h/db").is_err());
        let e = StoreKind::of("mysql://u:secret@h/db").unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("postgres://vdi:hunter2@db:5432/vdi"),
            "postgres://vdi:***@db:5432/vdi"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("redis://:pw@h"), "redis://:***@h");
        assert_eq!(
            redact("redis+sentinel://:pw@s1:26379,s2/exam/1?sentinel_password=sp&x=1"),
            "redis+sentinel://:***@s1:26379,s2/exam/1?sentinel_password=***&x=1"
        );
        assert_eq!(
            redact("postgres://vdi:hunter2@db1:5432,db2:5432/vdi?target_session_attrs=read-write"),
            "postgres://vdi:***@db1:5432,db2:5432/vdi?target_session_attrs=read-write"
        );
        assert_eq!(redact("memory"), "memory");
    }

    #[tokio::test]
    async fn memory_opens() {
        let opened = open_store("memory", &StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(opened.kind, StoreKind::Memory);
        assert!(opened.store.ping().await.is_ok());
    }
}
