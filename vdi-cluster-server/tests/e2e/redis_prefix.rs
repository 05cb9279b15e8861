//! A random key prefix on the shared Redis for one test: the control
//! planes of the test keep their state under it; its keys are deleted on
//! drop (SCAN + DEL, never FLUSHALL).

use std::time::Duration;

use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_redis::redis;

use crate::common::CpOptions;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A random key prefix on a reachable Redis; its keys are deleted on drop.
pub struct RedisPrefix {
    pub url: String,
    pub prefix: String,
}

impl RedisPrefix {
    pub async fn new() -> Option<Self> {
        let url = redis_url();
        let ping = async {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(5), ping).await {
            Ok(Ok(_)) => Some(Self {
                url,
                prefix: format!("vdi-e2e-{}", uuid::Uuid::new_v4().simple()),
            }),
            Ok(Err(e)) => backend_unreachable("Redis", &url, &e),
            Err(e) => backend_unreachable("Redis", &url, &e),
        }
    }
}

impl RedisPrefix {
    /// Control-plane options keeping state under this prefix.
    pub fn options(&self) -> CpOptions {
        CpOptions {
            store: Some(self.url.clone()),
            redis_prefix: Some(self.prefix.clone()),
            ..CpOptions::default()
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(5)) else {
            return;
        };
        let pattern = format!("{}:*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}
