//! Helpers shared by the integration tests: the Redis under test, random
//! prefixes and raw connections. Private `redis-server` processes come from
//! the crate's `testkit`.

#![allow(dead_code)] // each test crate uses a different subset

use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis::{self, AsyncCommands};

/// Default Redis of the tests.
pub(crate) const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// `REDIS_URL`, or the default.
pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A fresh prefix, so tests never see each other's keys.
pub(crate) fn test_prefix() -> String {
    format!("vdi-test-{}", uuid::Uuid::new_v4().simple())
}

/// A store on the Redis under test with a fresh prefix; `None` (skip) when
/// it is unreachable and `VDI_REQUIRE_BACKENDS` is not `1`.
pub(crate) async fn shared_store() -> Option<RedisStore> {
    let url = redis_url();
    match RedisStore::builder(&url)
        .prefix(test_prefix())
        .connect()
        .await
    {
        Ok(store) => Some(store),
        Err(e) => backend_unreachable("Redis", &url, &e),
    }
}

/// Another independent handle (its own connection) on `store`'s prefix.
pub(crate) async fn replica_of(url: &str, store: &RedisStore) -> RedisStore {
    RedisStore::builder(url)
        .prefix(store.prefix())
        .connect()
        .await
        .expect("replica connects")
}

/// A raw connection for poking at keys.
pub(crate) async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// Every key under `prefix`, found with SCAN.
pub(crate) async fn keys_under(url: &str, prefix: &str) -> Vec<String> {
    let mut conn = raw(url).await;
    let mut out = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("scan");
        out.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    out.sort();
    out.dedup();
    out
}

/// Deletes every key under `prefix` (and nothing else).
pub(crate) async fn delete_prefix(url: &str, prefix: &str) {
    let keys = keys_under(url, prefix).await;
    let mut conn = raw(url).await;
    for chunk in keys.chunks(500) {
        let _: () = conn.unlink(chunk).await.expect("unlink");
    }
}

/// Adds `delta` to `worker`'s dispatched count behind the store's back, in
/// the documented layout (`{prefix}:dispatched`, field = worker code),
/// never below zero (as the stores keep it).
pub(crate) async fn corrupt_dispatched<C: AsyncCommands>(
    conn: &mut C,
    prefix: &str,
    worker: &str,
    delta: i64,
) {
    let key = format!("{prefix}:dispatched");
    let n: i64 = conn.hincr(&key, worker, delta).await.expect("HINCRBY");
    if n < 0 {
        let _: () = conn.hset(&key, worker, 0).await.expect("HSET");
    }
}
