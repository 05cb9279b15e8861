//! Where a run happens: the backend named by `--store`, a private namespace
//! on it (a random Redis key prefix, a fresh PostgreSQL database), and one
//! independent store handle per control-plane replica. [`Deployment::close`]
//! removes the namespace again.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::{ConnectOptions, Connection, Executor};
use vdi_cluster_core::{MemoryStore, Store};
use vdi_cluster_postgres::{PgConnectOptions, PgStore, PgStoreConfig};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis;

use crate::cpu::{Probe, ServerProbe};

/// The backend a run targets, parsed from `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `memory`: one in-process [`MemoryStore`] shared by every replica.
    Memory,
    /// `redis://…`.
    Redis(String),
    /// `postgres://…` (or `postgresql://…`): the server to create a fresh
    /// database on.
    Postgres(String),
    /// `http://…`: a running `vdi-cluster serve`.
    Http(String),
}

impl Backend {
    /// Short name for tables (`memory`, `redis`, `postgres`, `http`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
            Self::Http(_) => "http",
        }
    }

    /// The URL, if any.
    pub fn url(&self) -> &str {
        match self {
            Self::Memory => "memory",
            Self::Redis(u) | Self::Postgres(u) | Self::Http(u) => u,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url())
    }
}

/// Hosts a load test may target: this machine only.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// The host of `url` (between `://`, any credentials, and the port or path).
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.split_once(']').map_or(host_port, |(h, _)| h);
    }
    host_port.split(':').next().unwrap_or("")
}

impl FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let backend = if s == "memory" {
            return Ok(Self::Memory);
        } else if s.starts_with("redis://") {
            Self::Redis(s.to_owned())
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::Postgres(s.to_owned())
        } else if s.starts_with("http://") {
            Self::Http(s.trim_end_matches('/').to_owned())
        } else {
            bail!("--store must be memory, redis://…, postgres://… or http://…, not {s:?}");
        };
        let host = host_of(s);
        if !is_loopback(host) {
            bail!("load tests target this machine only (127.0.0.1, localhost, ::1), not {host:?}");
        }
        Ok(backend)
    }
}

/// The private namespace of a deployment.
#[derive(Debug)]
enum Namespace {
    Memory,
    Redis { url: String, prefix: String },
    Postgres(Box<PgNamespace>),
}

/// A fresh database and the pools on it.
#[derive(Debug)]
struct PgNamespace {
    admin: PgConnectOptions,
    options: PgConnectOptions,
    database: String,
    stores: Vec<PgStore>,
}

/// A private namespace on a backend and one store handle per replica.
#[derive(Debug)]
pub struct Deployment {
    backend: Backend,
    stores: Vec<Arc<dyn Store>>,
    namespace: Namespace,
}

/// A fresh key prefix, unique to this run.
pub fn random_prefix() -> String {
    format!(
        "vdi-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// PostgreSQL settings for stores under load: generous timeouts (the
/// machine is busy; no run should fail on a slow acquire).
pub fn pg_config(pool: u32) -> PgStoreConfig {
    PgStoreConfig::default()
        .max_connections(pool)
        .acquire_timeout(Duration::from_secs(30))
        .statement_timeout(Duration::from_secs(30))
        .application_name("vdi-loadgen")
}

async fn admin_connection(admin: &PgConnectOptions) -> anyhow::Result<sqlx::PgConnection> {
    tokio::time::timeout(Duration::from_secs(10), admin.connect())
        .await
        .context("no answer within 10 s")?
        .context("connect")
}

impl Deployment {
    /// Opens a fresh namespace on `backend` with `replicas` independent
    /// store handles (each its own connection or pool of `pg_pool`).
    pub async fn open(backend: &Backend, replicas: usize, pg_pool: u32) -> anyhow::Result<Self> {
        let replicas = replicas.max(1);
        match backend {
            Backend::Memory => {
                let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
                Ok(Self {
                    backend: backend.clone(),
                    stores: (0..replicas).map(|_| Arc::clone(&store)).collect(),
                    namespace: Namespace::Memory,
                })
            }
            Backend::Redis(url) => {
                let prefix = random_prefix();
                let mut stores: Vec<Arc<dyn Store>> = Vec::with_capacity(replicas);
                for _ in 0..replicas {
                    let store = RedisStore::builder(url)
                        .prefix(&prefix)
                        .timeout(Duration::from_secs(30))
                        .connect()
                        .await
                        .with_context(|| format!("Redis at {url}"))?;
                    stores.push(Arc::new(store));
                }
                Ok(Self {
                    backend: backend.clone(),
                    stores,
                    namespace: Namespace::Redis {
                        url: url.clone(),
                        prefix,
                    },
                })
            }
            Backend::Postgres(url) => {
                let admin = PgConnectOptions::from_str(url).context("PostgreSQL URL")?;
                let mut conn = admin_connection(&admin)
                    .await
                    .with_context(|| format!("PostgreSQL at {url}"))?;
                // Generated here, hex only: safe to splice into DDL.
                let database = format!("vdi_bench_{}", uuid::Uuid::new_v4().simple());
                conn.execute(format!("CREATE DATABASE \"{database}\"").as_str())
                    .await
                    .context("create the benchmark database")?;
                let _ = conn.close().await;
                let options = admin.clone().database(&database);
                let mut deployment = Self {
                    backend: backend.clone(),
                    stores: Vec::new(),
                    namespace: Namespace::Postgres(Box::new(PgNamespace {
                        admin,
                        options: options.clone(),
                        database,
                        stores: Vec::new(),
                    })),
                };
                let opened = async {
                    let mut pg = Vec::with_capacity(replicas);
                    for i in 0..replicas {
                        let store = PgStore::connect_lazy_with(options.clone(), pg_config(pg_pool));
                        if i == 0 {
                            store.migrate().await.context("migrate")?;
                        }
                        pg.push(store);
                    }
                    anyhow::Ok(pg)
                }
                .await;
                match opened {
                    Ok(pg) => {
                        deployment.stores = pg
                            .iter()
                            .map(|s| Arc::new(s.clone()) as Arc<dyn Store>)
                            .collect();
                        if let Namespace::Postgres(ns) = &mut deployment.namespace {
                            ns.stores = pg;
                        }
                        Ok(deployment)
                    }
                    Err(e) => {
                        deployment.close().await;
                        Err(e)
                    }
                }
            }
            Backend::Http(_) => bail!("the HTTP target has no store of its own"),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// One store handle per replica.
    pub fn stores(&self) -> &[Arc<dyn Store>] {
        &self.stores
    }

    /// The Redis URL and key prefix, on Redis.
    pub fn redis_namespace(&self) -> Option<(&str, &str)> {
        match &self.namespace {
            Namespace::Redis { url, prefix } => Some((url, prefix)),
            _ => None,
        }
    }

    /// Connect options of the fresh database, on PostgreSQL.
    pub fn pg_options(&self) -> Option<&PgConnectOptions> {
        match &self.namespace {
            Namespace::Postgres(ns) => Some(&ns.options),
            _ => None,
        }
    }

    /// A new store handle on the namespace (its own connection or pool),
    /// for reading it after the backend was restarted under the others.
    pub async fn reconnect(&self) -> anyhow::Result<Arc<dyn Store>> {
        match &self.namespace {
            Namespace::Memory => Ok(Arc::clone(&self.stores[0])),
            Namespace::Redis { url, prefix } => Ok(Arc::new(
                RedisStore::builder(url)
                    .prefix(prefix)
                    .timeout(Duration::from_secs(30))
                    .connect()
                    .await
                    .with_context(|| format!("Redis at {url}"))?,
            )),
            Namespace::Postgres(ns) => Ok(Arc::new(PgStore::connect_lazy_with(
                ns.options.clone(),
                pg_config(2),
            ))),
        }
    }

    /// On PostgreSQL, ends every connection to the namespace's database
    /// but this call's own (`pg_terminate_backend`): what a server restart
    /// does to its clients, without touching any other database. The
    /// number of connections ended.
    pub async fn terminate_connections(&self) -> anyhow::Result<u64> {
        let Namespace::Postgres(ns) = &self.namespace else {
            bail!("only a PostgreSQL namespace has connections to end");
        };
        let mut conn = admin_connection(&ns.admin).await?;
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()) AS ended",
        )
        .bind(&ns.database)
        .fetch_one(&mut conn)
        .await
        .context("terminate the database's connections")?;
        let _ = conn.close().await;
        Ok(u64::try_from(ended).unwrap_or(0))
    }

    /// Where to read the backend server's CPU use from.
    pub async fn cpu_probe(&self) -> Probe {
        let server = match &self.namespace {
            Namespace::Redis { url, .. } => match redis_connection(url).await {
                Ok(conn) => ServerProbe::Redis(conn),
                Err(_) => ServerProbe::None,
            },
            Namespace::Postgres(_) => ServerProbe::Postgres,
            Namespace::Memory => ServerProbe::None,
        };
        Probe {
            server,
            control: Vec::new(),
        }
    }

    /// Removes the namespace: every key under the prefix (SCAN + UNLINK,
    /// never FLUSHALL), or the database (DROP … WITH (FORCE)). Best effort:
    /// failures are printed, not returned.
    pub async fn close(self) {
        match self.namespace {
            Namespace::Memory => {}
            Namespace::Redis { url, prefix } => {
                drop(self.stores);
                // Twice: a command already sent by an interrupted phase may
                // land just after the first sweep.
                for pause in [Duration::ZERO, Duration::from_millis(300)] {
                    tokio::time::sleep(pause).await;
                    if let Err(e) = delete_prefix_retrying(&url, &prefix).await {
                        eprintln!("warning: could not delete Redis keys under {prefix}: {e:#}");
                        break;
                    }
                }
            }
            Namespace::Postgres(ns) => {
                let PgNamespace {
                    admin,
                    database,
                    stores,
                    ..
                } = *ns;
                drop(self.stores);
                for s in &stores {
                    s.close().await;
                }
                let dropped = async {
                    let mut conn = admin_connection(&admin).await?;
                    conn.execute(
                        format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)").as_str(),
                    )
                    .await?;
                    let _ = conn.close().await;
                    anyhow::Ok(())
                }
                .await;
                if let Err(e) = dropped {
                    eprintln!("warning: could not drop database {database}: {e:#}");
                }
            }
        }
    }
}

/// [`delete_prefix`], tried again after a failure (a Redis still busy
/// with the run's backlog may time out a sweep) with pauses of 1, 2, 4
/// and 8 s; the last error if every try fails.
async fn delete_prefix_retrying(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let mut pause = Duration::from_secs(1);
    loop {
        match delete_prefix(url, prefix).await {
            Ok(n) => return Ok(n),
            Err(e) if pause > Duration::from_secs(8) => return Err(e),
            Err(e) => {
                eprintln!(
                    "note: deleting Redis keys under {prefix} failed ({e:#}); again in {pause:?}"
                );
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

/// A raw multiplexed connection to `url`.
pub async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).context("Redis URL")?;
    tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .context("no answer within 10 s")?
    .context("connect")
}

/// Deletes every key under `prefix:` with SCAN and UNLINK.
pub async fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let mut conn = redis_connection(url).await?;
    let pattern = format!("{prefix}:*");
    let mut cursor = 0u64;
    let mut deleted = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backends_and_refuses_remote_hosts() {
        assert_eq!("memory".parse::<Backend>().unwrap(), Backend::Memory);
        assert!(matches!(
            "redis://127.0.0.1:6379".parse::<Backend>().unwrap(),
            Backend::Redis(_)
        ));
        assert!(matches!(
            "postgres://postgres@localhost/postgres"
                .parse::<Backend>()
                .unwrap(),
            Backend::Postgres(_)
        ));
        assert!(matches!(
            "http://[::1]:8080/".parse::<Backend>().unwrap(),
            Backend::Http(u) if u == "http://[::1]:8080"
        ));
        assert!("redis://10.0.0.5:6379".parse::<Backend>().is_err());
        assert!(
            "postgres://u:p@db.example.com/x"
                .parse::<Backend>()
                .is_err()
        );
        assert!("mysql://127.0.0.1".parse::<Backend>().is_err());
    }
}
