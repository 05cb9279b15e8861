//! The exam platform's numbers, the drain runbook, allocate idempotency, failover and readiness on Redis
//! and PostgreSQL, through the same HTTP server. Redis gets a random key prefix (its keys are deleted
//! afterwards); PostgreSQL a fresh database (dropped afterwards). When a
//! server cannot be reached the test says SKIP, or fails when
//! `VDI_REQUIRE_BACKENDS=1`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection, Executor};
use vdi_cluster_core::Store;
use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_postgres::{PgConnectOptions, PgStore};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis;

use crate::common::{Behaviour, Setup, TestServer};
use crate::runbook::{drain_runbook, exam_platform_numbers};
use crate::sessions::{failover_on, idempotency};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A Redis store under a fresh prefix; its keys are deleted on drop.
struct RedisFixture {
    url: String,
    prefix: String,
    store: RedisStore,
}

impl RedisFixture {
    async fn new() -> Option<Self> {
        let url = redis_url();
        let prefix = format!("vdi-server-test-{}", uuid::Uuid::new_v4().simple());
        match RedisStore::builder(url.clone())
            .prefix(prefix.clone())
            .timeout(Duration::from_secs(10))
            .connect()
            .await
        {
            Ok(store) => Some(Self { url, prefix, store }),
            Err(e) => backend_unreachable("Redis", &url, &e),
        }
    }

    async fn cleanup(self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let page: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await;
            let Ok((next, keys)) = page else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// A fresh PostgreSQL database with the schema; dropped by `cleanup`.
struct PgFixture {
    admin: PgConnectOptions,
    name: String,
    store: PgStore,
}

impl PgFixture {
    async fn new() -> Option<Self> {
        let url = database_url();
        let admin = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| panic!("DATABASE_URL {url:?} is malformed: {e}"));
        let mut conn = match tokio::time::timeout(Duration::from_secs(15), admin.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return backend_unreachable("PostgreSQL", &url, &e),
            Err(e) => return backend_unreachable("PostgreSQL", &url, &e),
        };
        // Generated here (hex only), never taken from input.
        let name = format!("vdi_server_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = conn.close().await;
        let options = admin.clone().database(&name);
        let store = PgStore::connect_lazy_with(options, Default::default());
        store.migrate().await.expect("migrations apply");
        Some(Self { admin, name, store })
    }

    async fn cleanup(self) {
        self.store.close().await;
        if let Ok(mut conn) = self.admin.connect().await {
            let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = conn.execute(statement.as_str()).await {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
            let _ = conn.close().await;
        }
    }
}

async fn runbook_on(store: Arc<dyn Store>, name: &'static str) {
    let (setup, _sim) = Setup::with_store(Arc::clone(&store), name);
    let s = TestServer::start(setup).await;
    exam_platform_numbers(&s).await;
    s.stop().await;
    // A second server (a restarted control plane) on the same data.
    let (setup, _sim) = Setup::with_store(store, name);
    let s = TestServer::start(setup).await;
    let w = s.worker("worker-node-2").await;
    assert_eq!(w["maxSessions"], 18);
    assert_eq!(w["availableSessions"], 7);
    drain_runbook(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn exam_platform_numbers_and_drain_runbook_on_redis() {
    let Some(fixture) = RedisFixture::new().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(fixture.store.clone());
    runbook_on(store, "redis").await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn exam_platform_numbers_and_drain_runbook_on_postgres() {
    let Some(fixture) = PgFixture::new().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(fixture.store.clone());
    runbook_on(store, "postgres").await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn allocate_idempotency_on_redis() {
    let Some(fixture) = RedisFixture::new().await else {
        return;
    };
    let (setup, sim) = Setup::with_store(Arc::new(fixture.store.clone()), "redis");
    idempotency(setup, sim).await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn allocate_idempotency_on_postgres() {
    let Some(fixture) = PgFixture::new().await else {
        return;
    };
    let (setup, sim) = Setup::with_store(Arc::new(fixture.store.clone()), "postgres");
    idempotency(setup, sim).await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn failover_on_a_timeout_on_redis() {
    let Some(fixture) = RedisFixture::new().await else {
        return;
    };
    failover_on(
        Setup::with_store_http(Arc::new(fixture.store.clone()), "redis"),
        Behaviour::Hang,
    )
    .await;
    fixture.cleanup().await;
}

#[tokio::test]
async fn failover_on_a_timeout_on_postgres() {
    let Some(fixture) = PgFixture::new().await else {
        return;
    };
    failover_on(
        Setup::with_store_http(Arc::new(fixture.store.clone()), "postgres"),
        Behaviour::Hang,
    )
    .await;
    fixture.cleanup().await;
}

/// `/readyz` reads the tables allocations read: while another session
/// holds them locked it answers 503 (within its bound), and 200 again once
/// they are free, with no restart.
#[tokio::test]
async fn readyz_is_503_while_the_tables_are_locked() {
    let Some(fixture) = PgFixture::new().await else {
        return;
    };
    let (setup, _sim) = Setup::with_store(Arc::new(fixture.store.clone()), "postgres");
    let s = TestServer::start(setup).await;
    assert_eq!(s.get("/readyz").await.status, 200);

    let mut locker = fixture
        .admin
        .clone()
        .database(&fixture.name)
        .connect()
        .await
        .unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("LOCK TABLE vdi.workers, vdi.dispatches IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let r = s.get("/readyz").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.error_message().contains("did not answer"), "{r:?}");

    locker.execute("ROLLBACK").await.unwrap();
    let _ = locker.close().await;
    // Answered again without a restart (the timed-out read may still be
    // finishing on its pooled connection: wait for it, bounded).
    tokio::time::timeout(Duration::from_secs(30), async {
        while s.get("/readyz").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("/readyz answers 200 again once the tables are free");
    s.stop().await;
    fixture.cleanup().await;
}
