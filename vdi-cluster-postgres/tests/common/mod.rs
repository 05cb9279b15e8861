//! Test support: a fresh database per test on the PostgreSQL at
//! `DATABASE_URL`, stores on it, and worker/dispatch builders.

#![allow(dead_code, unreachable_pub)]

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use vdi_cluster_core::store::Registry;
use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_core::{WorkerId, WorkerRecord};
use vdi_cluster_postgres::{PgConnectOptions, PgPool, PgStore, PgStoreConfig};

/// Where the tests find PostgreSQL when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `DATABASE_URL`, or the default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Set to `1` to keep test databases (for debugging a failure).
const KEEP_ENV: &str = "VDI_KEEP_TEST_DB";

/// Generous bounds for stores under test: the machine may be busy, and no
/// test asserts on timing.
pub fn test_config() -> PgStoreConfig {
    PgStoreConfig::default()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .statement_timeout(Duration::from_secs(30))
}

/// A database of its own for one test, dropped (WITH FORCE) when the test
/// ends, also when it panics.
#[derive(Debug)]
pub struct TestDb {
    admin: PgConnectOptions,
    name: String,
    options: PgConnectOptions,
    pools: Mutex<Vec<PgPool>>,
    dropped: AtomicBool,
}

async fn admin_connection(options: &PgConnectOptions) -> Result<PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(15), options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 15 s".to_owned()),
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) {
    if let Ok(mut conn) = admin_connection(admin).await {
        let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        if let Err(e) = conn.execute(statement.as_str()).await {
            eprintln!("could not drop test database {name}: {e}");
        }
        let _ = conn.close().await;
    }
}

impl TestDb {
    /// A new empty database, or `None` (after a SKIP line) when PostgreSQL
    /// is unreachable and `VDI_REQUIRE_BACKENDS` is not `1`.
    pub async fn create() -> Option<Self> {
        let url = database_url();
        let admin = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| panic!("DATABASE_URL {url:?} is malformed: {e}"));
        let mut conn = match admin_connection(&admin).await {
            Ok(conn) => conn,
            Err(e) => return backend_unreachable("PostgreSQL", &url, &e),
        };
        // The name is generated here (hex only), never taken from input.
        let name = format!("vdi_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        let options = admin.clone().database(&name);
        Some(Self {
            admin,
            name,
            options,
            pools: Mutex::new(Vec::new()),
            dropped: AtomicBool::new(false),
        })
    }

    /// A new database with the schema migrated.
    pub async fn migrated() -> Option<Self> {
        let db = Self::create().await?;
        db.store().migrate().await.expect("migrate");
        Some(db)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connect options of this database.
    pub fn options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// A store with its own pool on this database (one replica).
    pub fn store(&self) -> PgStore {
        self.store_with(test_config())
    }

    /// A store with its own pool and `config`.
    pub fn store_with(&self, config: PgStoreConfig) -> PgStore {
        let store = PgStore::connect_lazy_with(self.options(), config);
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store.pool().clone());
        store
    }

    /// One plain connection, for raw SQL.
    pub async fn connection(&self) -> PgConnection {
        self.options.connect().await.expect("connect to test db")
    }

    /// Adds `delta` to `worker`'s counter behind the store's back.
    pub async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        let mut conn = self.connection().await;
        let done = sqlx::query(
            "UPDATE vdi.workers SET dispatched = GREATEST(dispatched + $2, 0) WHERE id = $1",
        )
        .bind(worker.as_str())
        .bind(delta)
        .execute(&mut conn)
        .await
        .expect("corrupt counter");
        let _ = conn.close().await;
        done.rows_affected() == 1
    }

    /// Closes every pool and drops the database.
    pub async fn cleanup(&self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        let pools = std::mem::take(&mut *self.pools.lock().unwrap_or_else(|e| e.into_inner()));
        for pool in pools {
            pool.close().await;
        }
        if std::env::var(KEEP_ENV).is_ok_and(|v| v == "1") {
            return;
        }
        drop_database(&self.admin, &self.name).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped.swap(true, Ordering::SeqCst)
            || std::env::var(KEEP_ENV).is_ok_and(|v| v == "1")
        {
            return;
        }
        // A panicking test: drop the database from a runtime of our own
        // (WITH (FORCE) ends the pools' sessions).
        let admin = self.admin.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(drop_database(&admin, &name));
            }
        })
        .join();
    }
}

/// Registers `record` (no record expected) and returns its version.
pub async fn register(store: &dyn Registry, record: &WorkerRecord) -> u64 {
    match store.put_worker(record, None).await.expect("put_worker") {
        vdi_cluster_core::store::CasOutcome::Written { version } => version,
        other => panic!("could not register {}: {other:?}", record.id),
    }
}
