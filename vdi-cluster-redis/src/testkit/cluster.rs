//! A Redis Cluster private to one test: three primaries on free loopback
//! ports sharing the 16,384 slots, each with a replica the cluster promotes
//! when its primary dies; every node killed (and its directory removed)
//! when dropped.

use std::process::Command;
use std::time::Duration;

use crate::redis;

use super::PrivateRedis;

/// The installed client that creates the cluster.
const REDIS_CLI: &str = "/usr/bin/redis-cli";
/// The longest wait for the cluster to agree on its slots.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// How long a node may be silent before the others call it down and
/// promote its replica.
const NODE_TIMEOUT_MS: u64 = 2_000;

/// Six cluster-enabled servers: three primaries that share the slots and
/// a replica of each.
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes, killed ones included.
    pub nodes: Vec<PrivateRedis>,
}

impl RedisCluster {
    /// Starts six nodes, assigns the slots to three and makes the others
    /// their replicas (`redis-cli --cluster create … --cluster-replicas
    /// 1`), and waits until every node reports `cluster_state:ok`;
    /// `None` (skip) when `redis-server` is missing and
    /// `VDI_REQUIRE_BACKENDS` is not 1.
    pub async fn start() -> Option<Self> {
        let mut nodes = Vec::new();
        let timeout = NODE_TIMEOUT_MS.to_string();
        for _ in 0..6 {
            nodes.push(PrivateRedis::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &timeout,
                // A replica may take over however long ago it last heard
                // from its primary (the default refuses one whose data
                // may be stale, which a test's fresh cluster can look).
                "--cluster-replica-validity-factor",
                "0",
            ])?);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let out = Command::new(REDIS_CLI)
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        cluster.until_settled().await;
        cluster.until_replicas_linked().await;
        Some(cluster)
    }

    /// `redis+cluster://…` naming every node.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The port of the primary that serves `key`'s slot now.
    pub async fn primary_of(&self, key: &str) -> u16 {
        let node = self
            .nodes
            .iter()
            .find(|node| node.is_running())
            .expect("a live node");
        let mut conn = redis::Client::open(node.url())
            .expect("a node's URL")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to a node");
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .expect("CLUSTER KEYSLOT");
        // Each range: [first, last, [ip, port, id, …] of its primary, its
        // replicas…].
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .expect("CLUSTER SLOTS");
        let int = |value: &redis::Value| redis::from_redis_value::<i64>(value.clone()).ok();
        let port = ranges
            .iter()
            .find_map(|range| {
                let (first, last) = (int(range.first()?)?, int(range.get(1)?)?);
                let redis::Value::Array(primary) = range.get(2)? else {
                    return None;
                };
                (first..=last)
                    .contains(&slot)
                    .then(|| int(primary.get(1)?))
                    .flatten()
            })
            .expect("every slot is served");
        u16::try_from(port).expect("a port")
    }

    /// Kills (SIGKILL) the primary that serves `key`'s slot; the cluster
    /// promotes its replica. Returns the killed node's port.
    pub async fn kill_primary_of(&mut self, key: &str) -> u16 {
        let port = self.primary_of(key).await;
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("the primary is one of the nodes")
            .kill();
        port
    }

    /// Waits until the replica of `key`'s primary has every write that
    /// primary took so far (replication is asynchronous: a write just
    /// acknowledged may not have reached it yet).
    pub async fn until_replicated(&self, key: &str) {
        let port = self.primary_of(key).await;
        let primary = self
            .nodes
            .iter()
            .find(|node| node.port() == port)
            .expect("the primary is one of the nodes");
        let written = field(&info(primary, "replication").await, "master_repl_offset");
        let caught_up = async {
            loop {
                let mut replicas = 0;
                for node in self.nodes.iter().filter(|n| n.is_running()) {
                    let info = info(node, "replication").await;
                    if field(&info, "master_port") == Some(u64::from(port)) {
                        replicas += 1;
                        if field(&info, "slave_repl_offset") >= written {
                            return;
                        }
                    }
                }
                assert!(replicas > 0, "the primary on port {port} has a replica");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(SETTLE_WITHIN, caught_up)
            .await
            .expect("the replica catches up with its primary");
    }

    /// Waits until every replica has its primary's data.
    async fn until_replicas_linked(&self) {
        let linked = async {
            for node in &self.nodes {
                loop {
                    let info = info(node, "replication").await;
                    if info.contains("role:master") || info.contains("master_link_status:up") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        tokio::time::timeout(SETTLE_WITHIN, linked)
            .await
            .expect("every replica links to its primary");
    }

    /// Waits until the live nodes agree again that every slot is served.
    pub async fn until_settled(&self) {
        let settled = async {
            for node in self.nodes.iter().filter(|node| node.is_running()) {
                while !cluster_info(node).await.contains("cluster_state:ok") {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        tokio::time::timeout(SETTLE_WITHIN, settled)
            .await
            .expect("the cluster settles on its slots");
    }
}

/// `CLUSTER INFO` of `node` (empty when it does not answer).
async fn cluster_info(node: &PrivateRedis) -> String {
    query(node, redis::cmd("CLUSTER").arg("INFO")).await
}

/// `INFO section` of `node` (empty when it does not answer).
/// The number after `name:` in an `INFO` answer.
fn field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

async fn info(node: &PrivateRedis, section: &str) -> String {
    query(node, redis::cmd("INFO").arg(section)).await
}

async fn query(node: &PrivateRedis, cmd: &redis::Cmd) -> String {
    let Ok(client) = redis::Client::open(node.url()) else {
        return String::new();
    };
    match client.get_multiplexed_async_connection().await {
        Ok(mut conn) => cmd.query_async(&mut conn).await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}
