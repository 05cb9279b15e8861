//! The store deployment whose primary the run kills, private to the run
//! (the store crates' `testkit` deployments): Redis with Sentinel (a
//! primary, a replica, three sentinels) or a PostgreSQL primary with a
//! streaming standby. Every process is killed and every directory removed
//! when it drops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vdi_cluster_core::Store;
use vdi_cluster_postgres::PgStore;
use vdi_cluster_postgres::testkit::StandbyPair;
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::testkit::SentinelCluster;

use crate::gameday::cluster::StoreArgs;

/// Which engine fails over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Redis with Sentinel.
    Redis,
    /// PostgreSQL with a hot standby, promoted by the run.
    Postgres,
}

impl Engine {
    /// `redis` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Postgres => "postgres",
        }
    }
}

/// A running deployment.
#[derive(Debug)]
pub(crate) enum Deployment {
    /// Sentinel's: `serve` uses `redis+sentinel://…` under `prefix`.
    Redis {
        cluster: SentinelCluster,
        prefix: String,
    },
    /// A pair: `serve` uses the host list `standby,primary`.
    Postgres(StandbyPair),
}

impl Deployment {
    /// Starts the deployment; with `sync`, PostgreSQL's primary waits for
    /// the standby's flush before a commit returns
    /// (`synchronous_standby_names = '*'`). (Redis' counterpart is a flag
    /// of `serve`: [`serve_flags`](Self::serve_flags).)
    pub(crate) async fn start(engine: Engine, sync: bool) -> anyhow::Result<Self> {
        match engine {
            Engine::Redis => {
                let cluster = SentinelCluster::start()
                    .await
                    .context("redis-server is not installed")?;
                Ok(Self::Redis {
                    cluster,
                    prefix: crate::deploy::random_prefix(),
                })
            }
            Engine::Postgres => {
                let pair = StandbyPair::start()
                    .await
                    .context("PostgreSQL's server binaries are not installed")?;
                if sync {
                    synchronous_standby(&pair).await?;
                }
                Ok(Self::Postgres(pair))
            }
        }
    }

    /// How `serve` reaches it.
    pub(crate) fn store_args(&self) -> StoreArgs {
        match self {
            Self::Redis { cluster, prefix } => StoreArgs::Redis {
                url: cluster.url(),
                prefix: prefix.clone(),
            },
            Self::Postgres(pair) => StoreArgs::Postgres { url: pair.url() },
        }
    }

    /// `serve`'s flags for `sync` on this engine.
    pub(crate) fn serve_flags(&self, sync: bool) -> Vec<String> {
        match self {
            Self::Redis { .. } if sync => vec!["--redis-wait-replicas".into(), "1".into()],
            _ => Vec::new(),
        }
    }

    /// `host:port` of the primary at first, and of the one after the
    /// failover.
    pub(crate) fn primaries(&self) -> (String, String) {
        match self {
            Self::Redis { cluster, .. } => (
                format!("127.0.0.1:{}", cluster.first.port()),
                format!("127.0.0.1:{}", cluster.second.port()),
            ),
            Self::Postgres(pair) => (pair.primary.name(), pair.standby.name()),
        }
    }

    /// What the report says of it.
    pub(crate) fn describe(&self, sync: bool) -> String {
        match self {
            Self::Redis { .. } => format!(
                "Redis with Sentinel (a primary, a replica, 3 sentinels; down after 1 s){}",
                if sync {
                    ", serve --redis-wait-replicas 1"
                } else {
                    ", asynchronous replication"
                }
            ),
            Self::Postgres(_) => format!(
                "PostgreSQL primary + streaming hot standby{}",
                if sync {
                    " (synchronous_standby_names = '*')"
                } else {
                    ", asynchronous replication"
                }
            ),
        }
    }

    /// Kills the primary (SIGKILL, with every process it started).
    pub(crate) fn kill_primary(&mut self) {
        match self {
            Self::Redis { cluster, .. } => cluster.kill_primary(),
            Self::Postgres(pair) => pair.primary.kill(),
        }
    }

    /// What follows the kill, as the deployment's own tools do it: the
    /// sentinels promote the replica by themselves; PostgreSQL's standby
    /// is promoted `promote_after` after the kill (as Patroni or repmgr
    /// would). Answers what was done, for the report.
    pub(crate) async fn fail_over(&mut self, promote_after: Duration) -> String {
        match self {
            Self::Redis { cluster, .. } => {
                let killed = Instant::now();
                cluster.until_failed_over().await;
                format!(
                    "the sentinels named the replica primary {:.1} s after the kill",
                    killed.elapsed().as_secs_f64()
                )
            }
            Self::Postgres(pair) => {
                tokio::time::sleep(promote_after).await;
                let asked = Instant::now();
                pair.promote().await;
                format!(
                    "the standby was promoted {} ms after the kill (pg_promote took {} ms)",
                    promote_after.as_millis(),
                    asked.elapsed().as_millis()
                )
            }
        }
    }

    /// Redis: starts the old primary again, as a replica of the new one
    /// (as a supervisor restarts a crashed server), and waits until it has
    /// synchronised. Nothing on PostgreSQL.
    pub(crate) async fn restart_old_primary(&mut self) {
        if let Self::Redis { cluster, .. } = self {
            cluster.bring_back_old_primary().await;
        }
    }

    /// A store handle of the load generator's own on the deployment (after
    /// the failover), for the recount.
    pub(crate) async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Self::Redis { cluster, prefix } => Arc::new(
                RedisStore::builder(cluster.url())
                    .prefix(prefix.clone())
                    .connect()
                    .await?,
            ),
            Self::Postgres(pair) => Arc::new(PgStore::connect(&pair.url()).await?),
        })
    }
}

/// Makes the standby of `pair` synchronous and waits until the primary
/// reports it so.
async fn synchronous_standby(pair: &StandbyPair) -> anyhow::Result<()> {
    let mut primary = pair.primary.connect().await;
    // Two statements, each on its own: ALTER SYSTEM refuses to run in the
    // transaction block a multi-statement string would be.
    for statement in [
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::raw_sql(statement)
            .execute(&mut primary)
            .await
            .with_context(|| format!("{statement} on the primary"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: Option<String> =
            sqlx::query_scalar("SELECT sync_state FROM pg_stat_replication LIMIT 1")
                .fetch_optional(&mut primary)
                .await?;
        if state.as_deref() == Some("sync") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the standby never became synchronous (sync_state {state:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
