//! # vdi-cluster-postgres
//!
//! The PostgreSQL backend of vdi-cluster: [`PgStore`] implements every
//! store trait of [`vdi_cluster_core`] — [`Registry`](vdi_cluster_core::Registry),
//! [`DispatchStore`](vdi_cluster_core::DispatchStore),
//! [`LeaderLease`](vdi_cluster_core::LeaderLease) and
//! [`AuditLog`](vdi_cluster_core::AuditLog), so it is a
//! [`Store`](vdi_cluster_core::Store) — on
//! [sqlx](sqlx) with a connection pool. Any number of control-plane
//! replicas may share one database: every step that must be atomic is one
//! statement, and the invariants of the core contract (no over-allocation,
//! one dispatch per session, no counter drift) hold across all of them.
//!
//! ```no_run
//! use vdi_cluster_postgres::PgStore;
//! # async fn run() -> vdi_cluster_core::Result<()> {
//! let store = PgStore::connect("postgres://vdi@db.internal/vdi").await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```
//!
//! A complete [`ClusterService`](vdi_cluster_core::ClusterService) on
//! PostgreSQL is shown [at the end](#a-cluster-service-on-postgresql).
//!
#![doc = include_str!("../docs/schema.md")]
//!
#![doc = include_str!("../docs/statements.md")]
//!
#![doc = include_str!("../docs/operations.md")]
//!
//! ## A cluster service on PostgreSQL
//!
//! The store goes into
//! [`ClusterService::builder`](vdi_cluster_core::ClusterService::builder) next to the client that
//! calls worker nodes (the reference server's HTTP client; here a stub that
//! answers every call at once).
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use async_trait::async_trait;
//! use vdi_cluster_core::{
//!     ClusterService, DesktopSettings, ExamId, SessionKey, WorkerCallError, WorkerClient,
//!     WorkerRecord,
//! };
//! use vdi_cluster_core::testkit::heartbeat_for;
//! use vdi_cluster_postgres::{PgStore, PgStoreConfig};
//!
//! /// Stands in for the HTTP client of the worker API
//! /// (`/api/vdi/cluster/allocate|release|prewarm`).
//! #[derive(Debug)]
//! struct Workers;
//!
//! #[async_trait]
//! impl WorkerClient for Workers {
//!     async fn allocate(
//!         &self,
//!         worker: &WorkerRecord,
//!         key: &SessionKey,
//!         _: &DesktopSettings,
//!     ) -> Result<serde_json::Value, WorkerCallError> {
//!         Ok(serde_json::json!({
//!             "connection": format!("rdp://{}/{}/{}", worker.id, key.exam_id, key.user_id),
//!         }))
//!     }
//!
//!     async fn release(&self, _: &WorkerRecord, _: &SessionKey) -> Result<(), WorkerCallError> {
//!         Ok(())
//!     }
//!
//!     async fn prewarm(
//!         &self,
//!         _: &WorkerRecord,
//!         _: &ExamId,
//!         count: u32,
//!         _: &DesktopSettings,
//!     ) -> Result<u32, WorkerCallError> {
//!         Ok(count)
//!     }
//!
//!     async fn discard_prewarm(
//!         &self,
//!         _: &WorkerRecord,
//!         _: &ExamId,
//!     ) -> Result<u32, WorkerCallError> {
//!         Ok(0)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Every call fails with `Error::Unavailable` within
//!     // 2 s + 3 s + slack while PostgreSQL is down, and works again when
//!     // it is back.
//!     let config = PgStoreConfig::default()
//!         .max_connections(32)
//!         .acquire_timeout(Duration::from_secs(2))
//!         .statement_timeout(Duration::from_secs(3));
//!     let store = PgStore::connect_with("postgres://vdi@127.0.0.1/vdi", config).await?;
//!     store.migrate().await?;
//!
//!     let service = ClusterService::builder(Arc::new(store), Arc::new(Workers)).build();
//!
//!     // A worker node heartbeats: 8 vCPU / 12 GiB, VM 1.5 / 2048 → 4 slots.
//!     service.fleet().heartbeat(heartbeat_for("worker-1", 8.0, 12288, 0)).await?;
//!
//!     // A student clicks "start"; clicking again returns the same desktop.
//!     let key = SessionKey::parse("exam-42", "student-7")?;
//!     let placed = service.placement().allocate(key.clone(), Default::default()).await?;
//!     let again = service.placement().allocate(key.clone(), Default::default()).await?;
//!     assert_eq!(placed.dispatch.id, again.dispatch.id);
//!
//!     // Reconcile (the background loop runs it on one replica at a time,
//!     // under the `vdi.leases` lease) recounts every counter.
//!     let report = service.operations().reconcile().await?;
//!     println!("{report:?}");
//!
//!     // On submission the session is released; twice is harmless.
//!     service.placement().release(&key).await?;
//!     assert!(service.placement().release(&key).await?.is_none());
//!     Ok(())
//! }
//! ```
//!
//! (`heartbeat_for` comes from core's `testkit` feature; a real worker sends
//! its heartbeat over HTTP.)

mod audit;
mod capacity;
mod config;
mod confirm_batch;
mod credentials;
mod dispatch;
mod error;
mod exams;
mod hosts;
mod lanes;
mod lease;
mod ledger;
mod lost;
mod outbox;
mod permits;
mod primary;
mod registry;
mod rehearsals;
mod scheduled;
mod sql;
#[cfg(feature = "testkit")]
pub mod testkit;
mod waiting_room;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use config::{
    CALL_TIMEOUT_SLACK, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_LIVENESS_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_STALLED_AFTER, DEFAULT_STATEMENT_TIMEOUT, PgStoreConfig,
};
pub use lease::MAX_LEASE_TTL;
pub use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use sqlx::Row;
use sqlx::postgres::PgRow;
use vdi_cluster_core::{Error, Page, Result, Timestamp};

use crate::confirm_batch::ConfirmBatcher;
use crate::error::PgError;
use crate::hosts::Hosts;
use crate::lanes::Lanes;
use crate::primary::Primary;

/// The embedded schema migrations (`migrations/*.sql`), applied by
/// [`PgStore::migrate`]. Exposed for tools that manage migrations
/// themselves, such as `#[sqlx::test(migrator = "…")]`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The PostgreSQL store: two connection pools — one for the [liveness
/// lane](vdi_cluster_core::store::Lane) (heartbeats, registrations, the
/// leader lease), one for everything else — and the call timeout that
/// bounds every operation.
///
/// Clones share the pools. Separate stores (separate pools), in one process
/// or many, may share one database: that is how control-plane replicas run.
#[derive(Debug, Clone)]
pub struct PgStore {
    lanes: Lanes,
    call_timeout: Duration,
    /// Confirmations waiting to be written together (one commit).
    confirms: Arc<ConfirmBatcher>,
    /// With several hosts (or `target_session_attrs=read-write`): which
    /// one is writable, followed across failovers.
    primary: Option<Arc<Primary>>,
}

impl PgStore {
    /// Connects to `url` with the default [`PgStoreConfig`] and checks that
    /// the server answers.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgStoreConfig::default()).await
    }

    /// Connects to `url` with `config` and checks that the server answers
    /// (failing with [`Error::Unavailable`] otherwise).
    pub async fn connect_with(url: &str, config: PgStoreConfig) -> Result<Self> {
        let store = Self::connect_lazy(url, config)?;
        store
            .call(async {
                sqlx::query(sql::SERVER_ANSWERS)
                    .execute(store.pool())
                    .await?;
                Ok(())
            })
            .await?;
        Ok(store)
    }

    /// A store on `url` that connects on first use: it can be created while
    /// PostgreSQL is down (calls fail with [`Error::Unavailable`] until it
    /// is up). Fails only on a malformed URL. Must be called inside a Tokio
    /// runtime.
    ///
    /// `url` may list several hosts of one deployment, a primary and its
    /// standbys (`postgres://h1:5432,h2:5432/vdi`): the store uses the one
    /// that is writable and follows it when a standby is promoted. With one
    /// host, `?target_session_attrs=read-write` refuses that server while
    /// it is a standby.
    pub fn connect_lazy(url: &str, config: PgStoreConfig) -> Result<Self> {
        let hosts = Hosts::parse(url)?;
        if !hosts.writable_only {
            let options = hosts.servers.into_iter().next().expect("one host at least");
            return Ok(Self::connect_lazy_with(options, config));
        }
        let primary = Arc::new(Primary::new(&hosts, |options| {
            config.connect_options(options)
        }));
        let lanes = Lanes::new(
            primary
                .hooks(config.pool_options())
                .connect_lazy_with(primary.first()),
            primary
                .hooks(config.liveness_pool_options())
                .connect_lazy_with(primary.first()),
            config.stalled_after_bound(),
        );
        primary.start_look(&lanes);
        Ok(Self {
            lanes,
            call_timeout: config.call_timeout(),
            confirms: Arc::default(),
            primary: Some(primary),
        })
    }

    /// Like [`connect_lazy`](Self::connect_lazy), from parsed connect
    /// options (one host).
    pub fn connect_lazy_with(options: PgConnectOptions, config: PgStoreConfig) -> Self {
        let options = config.connect_options(options);
        let lanes = Lanes::new(
            config.pool_options().connect_lazy_with(options.clone()),
            config.liveness_pool_options().connect_lazy_with(options),
            config.stalled_after_bound(),
        );
        Self {
            lanes,
            call_timeout: config.call_timeout(),
            confirms: Arc::default(),
            primary: None,
        }
    }

    /// A store on an existing pool. Its call timeout is the pool's acquire
    /// timeout + [`DEFAULT_STATEMENT_TIMEOUT`] + [`CALL_TIMEOUT_SLACK`];
    /// set a `statement_timeout` on the pool's connections to match (or
    /// change the bound with [`with_call_timeout`](Self::with_call_timeout)).
    /// The liveness lane gets a pool of its own of
    /// [`DEFAULT_LIVENESS_CONNECTIONS`], opened with `pool`'s connect
    /// options and acquire timeout (not its hooks); a lane stalls after
    /// [`DEFAULT_STALLED_AFTER`].
    pub fn from_pool(pool: PgPool) -> Self {
        let acquire_timeout = pool.options().get_acquire_timeout();
        let call_timeout = acquire_timeout + DEFAULT_STATEMENT_TIMEOUT + CALL_TIMEOUT_SLACK;
        let liveness = PgPoolOptions::new()
            .max_connections(DEFAULT_LIVENESS_CONNECTIONS)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with((*pool.connect_options()).clone());
        Self {
            lanes: Lanes::new(pool, liveness, DEFAULT_STALLED_AFTER),
            call_timeout,
            confirms: Arc::default(),
            primary: None,
        }
    }

    /// Replaces the client-side bound of one call.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The client-side bound of one call.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The connection pool of the calling task's
    /// [lane](vdi_cluster_core::store::Lane): the liveness lane's pool
    /// inside its scope, the general pool otherwise.
    pub fn pool(&self) -> &PgPool {
        self.lanes.current().pool()
    }

    /// `host:port` of the server the store writes to, when its URL lists
    /// several hosts (or asks for the writable one); `None` otherwise.
    pub fn primary(&self) -> Option<String> {
        self.primary.as_ref().map(|primary| primary.name())
    }

    /// Times the store has moved to another host of its URL.
    pub fn primary_switches(&self) -> u64 {
        self.primary
            .as_ref()
            .map_or(0, |primary| primary.switches())
    }

    /// Applies the embedded migrations ([`MIGRATOR`]) that the database does
    /// not have yet. Safe to call from several replicas at once (the
    /// migrator takes an advisory lock) and on every start.
    pub async fn migrate(&self) -> Result<()> {
        // Migrations are not bounded by the call timeout: creating indexes
        // on a large table may legitimately take longer.
        MIGRATOR
            .run(self.lanes.general())
            .await
            .map_err(|e| Error::from(PgError::from(e)))
    }

    /// Closes every connection of both pools; later calls fail.
    pub async fn close(&self) {
        self.lanes.close().await;
    }

    /// Runs one call, in a turn of its lane, under the call timeout.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, PgError>>,
    ) -> Result<T, PgError> {
        let call = tokio::time::timeout(self.call_timeout, self.lanes.current().run(call));
        let result = match &self.primary {
            Some(primary) => primary.watch(&self.lanes, call).await,
            None => call.await,
        }
        .unwrap_or(Err(PgError::Timeout(self.call_timeout)));
        if let (Err(error), Some(primary)) = (&result, &self.primary) {
            primary.suspect(&self.lanes, error);
        }
        result
    }

    /// Runs one call under the call timeout, as core's result.
    async fn call<T>(&self, call: impl Future<Output = Result<T, PgError>>) -> Result<T> {
        self.bounded(call).await.map_err(Error::from)
    }
}

/// `t` as PostgreSQL's bigint milliseconds, naming `field` when it does not
/// fit.
fn millis(field: &str, t: Timestamp) -> Result<i64> {
    i64::try_from(t.as_millis()).map_err(|e| Error::invalid(field, e))
}

/// A LIMIT for `n` rows.
fn row_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `page` as the `OFFSET` and `LIMIT` of a statement (`NULL`: no limit).
fn page_bounds(page: Page) -> (i64, Option<i64>) {
    (row_limit(page.offset()), page.limit().map(row_limit))
}

/// The `total` column of a page's rows (the same on each).
fn page_total(rows: &[PgRow]) -> Result<usize, PgError> {
    let total: i64 = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => 0,
    };
    Ok(usize::try_from(total).unwrap_or(usize::MAX))
}

fn to_u64(what: &'static str, value: i64) -> Result<u64, PgError> {
    u64::try_from(value).map_err(|_| PgError::OutOfRange { what, value })
}

fn to_u32(what: &'static str, value: i64) -> Result<u32, PgError> {
    u32::try_from(value).map_err(|_| PgError::OutOfRange { what, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls_are_invalid_input() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        for url in ["mysql://db/x", "postgres://db:port/x", "db.internal"] {
            let err = PgStore::connect_lazy(url, PgStoreConfig::default()).unwrap_err();
            assert!(
                matches!(err, Error::Invalid(v) if v.field == "store"),
                "{url}"
            );
        }
        assert!(PgStore::connect_lazy("postgresql://db/x", PgStoreConfig::default()).is_ok());
    }

    #[test]
    fn migrations_are_embedded_in_order() {
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert!(versions.len() >= 2);
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn timestamps_beyond_bigint_are_rejected() {
        let err = millis("reservedAt", Timestamp(u64::MAX)).unwrap_err();
        assert!(matches!(err, Error::Invalid(v) if v.field == "reservedAt"));
        assert_eq!(millis("at", Timestamp(5)).unwrap(), 5);
    }
}
