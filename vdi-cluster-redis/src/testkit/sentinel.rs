//! A Redis deployment with Sentinel, private to one test: a primary, a
//! replica and three sentinels on free loopback ports, each killed (and
//! its directory removed) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::redis::{self, Value};

use super::{PrivateRedis, REDIS_SERVER, free_port, ping, private_dir};

/// The monitored master's name.
pub const MASTER: &str = "exam-store";

/// How long a sentinel waits before it calls the primary down.
const DOWN_AFTER_MS: u64 = 1_000;

/// A primary, its replica and three sentinels that monitor them.
#[derive(Debug)]
pub struct SentinelCluster {
    /// The first primary; a replica of the second after a failover and
    /// [`SentinelCluster::bring_back_old_primary`].
    pub first: PrivateRedis,
    /// The first replica, promoted by the sentinels when the first primary
    /// dies.
    pub second: PrivateRedis,
    sentinels: Vec<PrivateSentinel>,
}

impl SentinelCluster {
    /// Starts everything and waits until the sentinels know the replica
    /// and each other (a failover needs a majority of them); `None` (skip)
    /// when `redis-server` is missing and `VDI_REQUIRE_BACKENDS` is not 1.
    pub async fn start() -> Option<Self> {
        let first = PrivateRedis::start(&[])?;
        let second = PrivateRedis::start(&["--replicaof", "127.0.0.1", &first.port().to_string()])?;
        let sentinels = (0..3)
            .map(|_| PrivateSentinel::start(first.port()))
            .collect::<Vec<_>>();
        let cluster = Self {
            first,
            second,
            sentinels,
        };
        cluster.until_settled().await;
        Some(cluster)
    }

    /// `redis+sentinel://…` naming the three sentinels.
    pub fn url(&self) -> String {
        let hosts = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",");
        format!("redis+sentinel://{hosts}/{MASTER}")
    }

    /// Kills the first primary with SIGKILL.
    pub fn kill_primary(&mut self) {
        self.first.kill();
    }

    /// Waits (bounded) until every sentinel names the second server as
    /// the primary.
    pub async fn until_failed_over(&self) {
        self.until_all_name(&format!("127.0.0.1:{}", self.second.port()))
            .await;
    }

    /// Starts the first server again as a replica of the second, and waits
    /// until it has synchronised.
    pub async fn bring_back_old_primary(&mut self) {
        self.first.restart_as_replica_of(self.second.port());
        until_replica_linked(&self.first.url()).await;
    }

    /// Asks a sentinel for a switchover (`SENTINEL FAILOVER`) back to the
    /// first server, and waits until every sentinel names it.
    pub async fn switch_over(&self) {
        let _: () = query(
            &self.sentinels[0].url(),
            redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER),
        )
        .await
        .expect("the sentinel starts a switchover");
        let back = format!("127.0.0.1:{}", self.first.port());
        self.until_all_name(&back).await;
        until_replica_linked(&self.second.url()).await;
    }

    async fn until_all_name(&self, primary: &str) {
        for _ in 0..1200 {
            let mut named = Vec::new();
            for sentinel in &self.sentinels {
                named.push(sentinel.primary().await);
            }
            if named.iter().all(|p| p.as_deref() == Some(primary)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the sentinels never named {primary} the primary");
    }

    async fn until_settled(&self) {
        until_replica_linked(&self.second.url()).await;
        for sentinel in &self.sentinels {
            for _ in 0..1200 {
                let others = sentinel.count("SENTINELS").await;
                let replicas = sentinel.count("REPLICAS").await;
                if others >= self.sentinels.len() - 1 && replicas >= 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Polls until the server at `url` is a replica whose link is up.
pub async fn until_replica_linked(url: &str) {
    for _ in 0..1200 {
        if let Ok(info) = query::<String>(url, redis::cmd("INFO").arg("replication")).await
            && info.contains("role:slave")
            && info.contains("master_link_status:up")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became a linked replica");
}

async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

/// One `redis-server --sentinel` process.
#[derive(Debug)]
struct PrivateSentinel {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PrivateSentinel {
    fn start(primary: u16) -> Self {
        let dir = private_dir("vdi-sentinel");
        let port = free_port();
        // Sentinel rewrites its configuration file, so it gets one of its own.
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile sentinel.log\n\
                 sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {MASTER} 10000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir = dir.display()
            ),
        )
        .expect("sentinel configuration");
        let child = Command::new(REDIS_SERVER)
            .arg(&config)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel starts");
        let sentinel = Self { child, port, dir };
        for _ in 0..200 {
            if ping(port) {
                return sentinel;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(sentinel.dir.join("sentinel.log")).unwrap_or_default();
        panic!("sentinel on port {port} never answered PING:\n{log}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `host:port` of the primary this sentinel names.
    async fn primary(&self) -> Option<String> {
        let answer = query::<Option<(String, u16)>>(
            &self.url(),
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(MASTER),
        )
        .await
        .ok()??;
        Some(format!("{}:{}", answer.0, answer.1))
    }

    /// How many entries `SENTINEL <what> MASTER` lists (other sentinels,
    /// replicas).
    async fn count(&self, what: &str) -> usize {
        match query::<Value>(&self.url(), redis::cmd("SENTINEL").arg(what).arg(MASTER)).await {
            Ok(Value::Array(items)) => items.len(),
            _ => 0,
        }
    }
}

impl Drop for PrivateSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A stand-in for a sentinel that names whichever primary the test says:
/// it answers `SENTINEL GET-MASTER-ADDR-BY-NAME` with 127.0.0.1 and the
/// port set last, and every other command with an error.
#[derive(Debug)]
pub struct FakeSentinel {
    port: u16,
    primary: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSentinel {
    /// Listens on a free loopback port, naming `primary`.
    pub async fn naming(primary: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let named = Arc::new(AtomicU16::new(primary));
        let shared = Arc::clone(&named);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&shared)));
            }
        });
        Self {
            port,
            primary: named,
            task,
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, names the server on `primary`.
    pub fn name(&self, primary: u16) {
        self.primary.store(primary, Ordering::SeqCst);
    }
}

impl Drop for FakeSentinel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers one connection's commands (RESP arrays of bulk strings).
async fn answer(stream: TcpStream, primary: Arc<AtomicU16>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(header)) = lines.next_line().await {
        let Some(count) = header
            .strip_prefix('*')
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return;
        };
        let mut words = Vec::with_capacity(count);
        for _ in 0..count {
            // `$len` then the word itself.
            let (Ok(Some(_)), Ok(Some(word))) = (lines.next_line().await, lines.next_line().await)
            else {
                return;
            };
            words.push(word.to_ascii_uppercase());
        }
        let reply = if words.first().map(String::as_str) == Some("SENTINEL") {
            let port = primary.load(Ordering::SeqCst).to_string();
            format!("*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{port}\r\n", port.len())
        } else {
            "-ERR not a real sentinel\r\n".to_owned()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
