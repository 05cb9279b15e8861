//! Helpers shared by the integration tests: the Redis under test, random
//! prefixes, worker records, and private `redis-server` processes.

#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis::{self, AsyncCommands};

/// Default Redis of the tests.
pub(crate) const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The installed server binary restart tests start.
pub(crate) const REDIS_SERVER: &str = "/usr/bin/redis-server";

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

/// A `redis-server` process of this test on a free loopback port, killed
/// (and its directory removed) when dropped, even on panic.
#[derive(Debug)]
pub(crate) struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistence: Vec<String>,
}

impl PrivateRedis {
    /// Starts a server with `persistence` arguments (e.g. `["--appendonly",
    /// "yes", "--appendfsync", "always"]`); `None` (skip) if the binary is
    /// missing and `VDI_REQUIRE_BACKENDS` is not `1`.
    pub(crate) fn start(persistence: &[&str]) -> Option<Self> {
        if let Err(e) = std::fs::metadata(REDIS_SERVER) {
            return backend_unreachable("redis-server", REDIS_SERVER, &e);
        }
        let dir = std::env::temp_dir().join(format!("vdi-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("data directory");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            persistence: persistence.iter().map(|s| (*s).to_owned()).collect(),
        };
        // Another process may take the free port before the server binds
        // it: then try another one.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(log) => last = log,
            }
        }
        panic!("redis-server would not start:\n{last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log", "--daemonize", "no", "--save", ""])
            .args(&self.persistence)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls until the server answers PING (it may be loading its AOF);
    /// the server's log if it exited instead.
    fn wait_ready(&mut self) -> Result<(), String> {
        for _ in 0..600 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                return Err(format!("exited with {status}:\n{log}"));
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} never answered PING", self.port);
    }

    /// `redis://127.0.0.1:{port}`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL: no shutdown, no final save.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.spawn() {
            panic!(
                "redis-server did not come back on port {}: {log}",
                self.port
            );
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}
