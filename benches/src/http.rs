//! The `http://` target: real `vdi-cluster serve` processes (one per
//! replica, all on one backend namespace), worker nodes served by this
//! process, and students and workers speaking the documented API with
//! `vdi-cluster-protocol`'s bodies and headers:
//!
//! * students: `POST /api/vdi/sessions {"examId","userId"}` and
//!   `DELETE /api/vdi/sessions/:examId/:userId` with a `SERVICE` JWT (the
//!   exam application's credential, minted by `vdi-cluster token`);
//! * workers: `POST /api/vdi/workers/heartbeat` with the exam platform's body and
//!   the shared worker token in `x-worker-token`; the
//!   control plane calls `POST {apiBaseUrl}/api/vdi/cluster/allocate|release|prewarm`,
//!   served by the node crate's own worker-side API
//!   ([`vdi_cluster_node::api::router`]) over its session table with the
//!   simulated provisioner (starts taking `StartLatency`), checking
//!   `x-cluster-token`.
//!
//! Each worker's `apiBaseUrl` is `http://127.0.0.1:PORT`, a port of its
//! own. The servers run with `RUST_LOG=warn`; their
//! output goes to a log file under the system's temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use vdi_cluster_core::capacity::Millicores;
use vdi_cluster_core::{SessionKey, WorkerId};
use vdi_cluster_node::api::{WorkerApi, router};
use vdi_cluster_node::provision::SimulatedProvisioner;
use vdi_cluster_node::sessions::{LiveSnapshot, WorkerNode};
use vdi_cluster_protocol::exams::{AdmissionRefusedJson, BookExamRequest};
use vdi_cluster_protocol::{
    DescriptionJson, ErrorBody, HEARTBEAT_PATH, HeartbeatRequest, HeartbeatResponse, HostJson,
    PoolJson, SessionRef, WORKER_TOKEN_HEADER,
};

use crate::alloc::AllocOutcome;
use crate::audit::audit;
use crate::cluster::BOOT;
use crate::cpu;
use crate::deploy::{Backend, Deployment};
use crate::fleet::{heartbeat, worker_code};
use crate::target::{Beat, Recount, Target};

/// The control plane's session API (the exam application's side).
const SESSIONS_PATH: &str = "/api/vdi/sessions";
const EXAMS_PATH: &str = "/api/vdi/exams";

/// Slots of each node's own session table: unbounded, so that a node
/// never refuses a session the control plane placed — the recount, not
/// the node, judges over-allocation (against the slots its heartbeats
/// announce).
const NODE_SLOTS: u32 = u32::MAX;

/// How to start the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSetup {
    /// The `vdi-cluster` binary.
    pub server_bin: PathBuf,
    /// The servers' backend (`--store` of `vdi-cluster serve`).
    pub server_store: Backend,
    /// Server processes (control-plane replicas); 1 on `memory`.
    pub replicas: usize,
    /// PostgreSQL pool of this process's audit handle.
    pub pg_pool: u32,
    /// Port of the first server (from the `http://127.0.0.1:PORT` target);
    /// replica `i` listens on `port + i`.
    pub port: u16,
    /// How long the worker nodes take to start a session.
    pub start_latency: StartLatency,
    /// The servers' `--pace-starts` (passed explicitly: the server paces
    /// by default, the load generator's runs do not unless asked).
    pub pace_starts: bool,
}

/// How long worker nodes take to start a session: node `i` of `n` takes
/// `min + (max − min) · i / (n − 1)`, so the fleet covers the range
/// evenly (zero by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartLatency {
    /// The fastest node's start.
    pub min: Duration,
    /// The slowest node's start.
    pub max: Duration,
}

impl StartLatency {
    /// Node `i`'s start, of `n` nodes.
    pub fn of(&self, i: usize, n: usize) -> Duration {
        if n <= 1 || self.max <= self.min {
            return self.min;
        }
        let spread = self.max - self.min;
        self.min + spread.mul_f64(i as f64 / (n - 1) as f64)
    }
}

/// The port of an `http://host:port` URL (80 when absent).
pub fn port_of(url: &str) -> anyhow::Result<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => authority.find(':').map_or("", |i| &authority[i..]),
    };
    match after_host.strip_prefix(':') {
        Some(port) => port.parse().with_context(|| format!("port of {url}")),
        None => Ok(80),
    }
}

/// `vdi-cluster` beside the running executable (both are built into the
/// same `target/<profile>/`).
pub fn default_server_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("vdi-cluster")))
        .unwrap_or_else(|| PathBuf::from("vdi-cluster"))
}

/// `url` with its database name replaced by `database`.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

pub(crate) fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The worker nodes: one session table per worker, each behind the node
/// crate's worker-side API on a loopback port of its own, as separate
/// hosts would be. (One listener for all, with the nodes nested under
/// `/{code}`, would clone the whole fleet's route table for every
/// connection it accepts: at an exam's start that listener, not the
/// control plane, would be what students wait for.)
#[derive(Debug)]
struct Nodes {
    nodes: Vec<Arc<WorkerNode>>,
    addrs: Vec<SocketAddr>,
    tasks: JoinSet<()>,
}

impl Nodes {
    async fn start(workers: usize, token: &str, latency: StartLatency) -> anyhow::Result<Self> {
        let mut nodes = Vec::with_capacity(workers);
        let mut addrs = Vec::with_capacity(workers);
        let mut tasks = JoinSet::new();
        for i in 0..workers {
            let listener = vdi_cluster_node::listen::bind(([127, 0, 0, 1], 0).into())?;
            let addr = listener.local_addr()?;
            let code = WorkerId::parse("code", worker_code(i))?;
            let provisioner = SimulatedProvisioner::new(
                code.clone(),
                &addr.ip().to_string(),
                latency.of(i, workers),
                0.0,
            );
            let node = Arc::new(WorkerNode::new(code, NODE_SLOTS, Arc::new(provisioner)));
            let app = router(WorkerApi::without_agent(Arc::clone(&node), token));
            tasks.spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            nodes.push(node);
            addrs.push(addr);
        }
        Ok(Self {
            nodes,
            addrs,
            tasks,
        })
    }

    /// Sessions the nodes run beyond `slots` each.
    fn over(&self, slots: u32) -> u64 {
        self.nodes
            .iter()
            .map(|n| (n.snapshot().active as u64).saturating_sub(u64::from(slots)))
            .sum()
    }
}

/// Servers, worker nodes and a client, on a fresh backend namespace.
#[derive(Debug)]
pub struct HttpCluster {
    deployment: Deployment,
    servers: Vec<Child>,
    bases: Vec<String>,
    /// The cluster token: what the servers send to the worker nodes.
    token: String,
    /// The shared worker token of heartbeats.
    worker_token: String,
    /// The JWT secret of the servers.
    jwt_secret: String,
    /// A `SERVICE` JWT for the session API (set once the servers run).
    service_jwt: String,
    /// An `ADMIN` JWT for bookings (set once the servers run).
    admin_jwt: String,
    nodes: Nodes,
    client: reqwest::Client,
    log: PathBuf,
}

impl HttpCluster {
    /// Opens a namespace on `setup.server_store`, starts `workers` worker
    /// nodes and `setup.replicas` servers on it, and waits until every
    /// server is ready.
    pub async fn start(setup: &HttpSetup, workers: usize) -> anyhow::Result<Self> {
        let replicas = if setup.server_store == Backend::Memory {
            1
        } else {
            setup.replicas.max(1)
        };
        let deployment = Deployment::open(&setup.server_store, 1, setup.pg_pool).await?;
        let token = random_token();
        let nodes = Nodes::start(workers, &token, setup.start_latency).await?;
        let log = std::env::temp_dir().join(format!(
            "vdi-loadgen-server-{}.log",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let mut cluster = Self {
            deployment,
            servers: Vec::new(),
            bases: Vec::new(),
            token,
            worker_token: random_token(),
            jwt_secret: random_token(),
            service_jwt: String::new(),
            admin_jwt: String::new(),
            nodes,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(Duration::from_secs(60))
                .build()?,
            log,
        };
        if let Err(e) = cluster.spawn_servers(setup, replicas).await {
            cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn spawn_servers(&mut self, setup: &HttpSetup, replicas: usize) -> anyhow::Result<()> {
        let mut args: Vec<String> = Vec::new();
        match &setup.server_store {
            Backend::Memory => args.extend(["--store".into(), "memory".into()]),
            Backend::Redis(url) => {
                let (_, prefix) = self.deployment.redis_namespace().context("Redis prefix")?;
                args.extend([
                    "--store".into(),
                    url.clone(),
                    "--redis-prefix".into(),
                    prefix.to_owned(),
                ]);
            }
            Backend::Postgres(url) => {
                let db = self
                    .deployment
                    .pg_options()
                    .and_then(|o| o.get_database())
                    .context("database name")?;
                args.extend(["--store".into(), with_database(url, db)]);
            }
            Backend::Http(_) => bail!("--server-store must be memory, redis://… or postgres://…"),
        }
        if !setup.server_bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p vdi-cluster-server` or pass --server-bin",
                setup.server_bin.display()
            );
        }
        self.service_jwt = mint(&setup.server_bin, &self.jwt_secret, "SERVICE").await?;
        self.admin_jwt = mint(&setup.server_bin, &self.jwt_secret, "ADMIN").await?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        for i in 0..replicas {
            let port = setup
                .port
                .checked_add(i as u16)
                .context("server port out of range")?;
            let child = Command::new(&setup.server_bin)
                .arg("serve")
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(&args)
                .args(["--worker-cluster-token", &self.token])
                .args(["--worker-heartbeat-token", &self.worker_token])
                .args(["--jwt-secret", &self.jwt_secret])
                .args([
                    "--pace-starts",
                    if setup.pace_starts { "true" } else { "false" },
                ])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("start {}", setup.server_bin.display()))?;
            self.servers.push(child);
            self.bases.push(format!("http://127.0.0.1:{port}"));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for base in &self.bases {
            loop {
                let ready = self
                    .client
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                for s in &mut self.servers {
                    if let Ok(Some(status)) = s.try_wait() {
                        bail!(
                            "vdi-cluster serve exited with {status}; see {}",
                            self.log.display()
                        );
                    }
                }
                if Instant::now() > deadline {
                    bail!("{base} not ready within 60 s; see {}", self.log.display());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// CPU accounting of the backend and the server processes.
    pub async fn cpu_probe(&self) -> cpu::Probe {
        let mut probe = self.deployment.cpu_probe().await;
        probe.control = self.servers.iter().filter_map(Child::id).collect();
        probe
    }

    /// Base URL of the server that serves operation `i` (round robin).
    pub fn base(&self, i: usize) -> &str {
        &self.bases[i % self.bases.len()]
    }

    /// Server processes running.
    pub fn replicas(&self) -> usize {
        self.bases.len()
    }

    /// `beat` as the in-process target's workers send it
    /// ([`fleet::heartbeat`](crate::fleet::heartbeat)), in the protocol's
    /// body, with this process's node as the worker's API, reporting what
    /// its node runs (`running`), as its agent would.
    fn heartbeat_body(&self, beat: Beat, running: Option<&LiveSnapshot>) -> HeartbeatRequest {
        let active = running.map_or(0, |r| r.active);
        let hb = heartbeat(
            beat.worker,
            beat.slots,
            u32::try_from(active).unwrap_or(u32::MAX),
            BOOT,
            beat.seq,
        );
        let cores = |m: Millicores| m.0 as f64 / 1000.0;
        let spec = &hb.capacity;
        let mut description = DescriptionJson::from(&hb.description);
        description.api_base_url = format!("http://{}", self.nodes.addrs[beat.worker]);
        HeartbeatRequest {
            code: hb.worker.to_string(),
            description,
            total_cpu_cores: cores(spec.total_cpu),
            total_memory_mb: spec.total_memory_mb,
            reserved_cpu_cores: cores(spec.reserved_cpu),
            reserved_memory_mb: spec.reserved_memory_mb,
            vm_cpu_cores: cores(spec.vm_cpu),
            vm_memory_mb: spec.vm_memory_mb,
            active_sessions: hb.active_sessions,
            boot_id: hb.stamp.boot_id,
            seq: hb.stamp.seq,
            live_sessions: running
                .map(|r| r.live.iter().map(|(k, _)| SessionRef::from(k)).collect()),
            cpu_percent: hb.resources.cpu_percent,
            memory_percent: hb.resources.memory_percent,
            disk_percent: hb.resources.disk_percent,
            host: HostJson::default(),
            prewarm_pool: PoolJson::default(),
            max_concurrent_starts: hb.max_concurrent_starts,
        }
    }

    /// Stops the servers and the nodes, and removes the namespace.
    pub async fn stop(mut self) {
        for s in &mut self.servers {
            let _ = s.start_kill();
        }
        for s in &mut self.servers {
            let _ = tokio::time::timeout(Duration::from_secs(10), s.wait()).await;
        }
        self.nodes.tasks.abort_all();
        self.deployment.close().await;
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A day-long JWT of `role` for the servers sharing `secret`, minted by
/// `vdi-cluster token`.
pub(crate) async fn mint(server_bin: &Path, secret: &str, role: &str) -> anyhow::Result<String> {
    let minted = Command::new(server_bin)
        .args(["token", "--sub", "vdi-loadgen", "--role", role])
        .args(["--ttl-sec", "86400"])
        .env("JWT_SECRET", secret)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("{} token", server_bin.display()))?;
    if !minted.status.success() {
        bail!(
            "{} token failed: {}",
            server_bin.display(),
            String::from_utf8_lossy(&minted.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&minted.stdout).trim().to_owned())
}

/// `message` of an error body, or the body itself.
pub(crate) fn message(body: &[u8]) -> String {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
}

async fn answer(sent: reqwest::Result<reqwest::Response>) -> Result<(u16, Vec<u8>), String> {
    let response = sent.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, body.to_vec()))
}

#[async_trait]
impl Target for HttpCluster {
    /// `POST /api/vdi/sessions`: 201 placed, 200 the existing session,
    /// 202 queued, 503 with core's `NoCapacity` message refused.
    async fn allocate(&self, via: usize, key: &SessionKey) -> AllocOutcome {
        let sent = self
            .client
            .post(format!("{}{SESSIONS_PATH}", self.base(via)))
            .bearer_auth(&self.service_jwt)
            .json(&SessionRef::from(key))
            .send()
            .await;
        match answer(sent).await {
            Err(e) => AllocOutcome::Failed(e),
            Ok((201, _)) => AllocOutcome::Placed {
                retries: 0,
                failed_calls: 0,
            },
            Ok((200, _)) => AllocOutcome::Existing,
            Ok((202, _)) => AllocOutcome::Queued,
            Ok((503, body)) if message(&body).starts_with("no worker can take a session") => {
                AllocOutcome::NoCapacity
            }
            Ok((status, body)) => AllocOutcome::Failed(format!("{status}: {}", message(&body))),
        }
    }

    /// `POST /api/vdi/exams` with an `ADMIN` JWT.
    async fn book(&self, exam: BookExamRequest) -> anyhow::Result<Option<u32>> {
        let id = exam.exam_id.clone();
        let sent = self
            .client
            .post(format!("{}{EXAMS_PATH}", self.base(0)))
            .bearer_auth(&self.admin_jwt)
            .json(&exam)
            .send()
            .await;
        match answer(sent).await.map_err(anyhow::Error::msg)? {
            (201, _) => Ok(None),
            (409, body) => Ok(Some(
                serde_json::from_slice::<AdmissionRefusedJson>(&body)
                    .with_context(|| format!("booking {id}: the 409's body"))?
                    .shortfall
                    .shortfall,
            )),
            (status, body) => bail!("booking {id}: {status}: {}", message(&body)),
        }
    }

    /// `DELETE /api/vdi/sessions/:examId/:userId`.
    async fn release(&self, via: usize, key: &SessionKey) -> Result<(), String> {
        let sent = self
            .client
            .delete(format!(
                "{}{SESSIONS_PATH}/{}/{}",
                self.base(via),
                key.exam_id,
                key.user_id
            ))
            .bearer_auth(&self.service_jwt)
            .send()
            .await;
        match answer(sent).await? {
            (200..=299, _) => Ok(()),
            (status, body) => Err(format!("{status}: {}", message(&body))),
        }
    }

    /// `POST /api/vdi/workers/heartbeat` with the shared worker token. As
    /// the worker agent does, the node then stops the sessions the answer
    /// names (duplicates settled elsewhere) if they are still the ones it
    /// reported.
    async fn heartbeat(&self, via: usize, beat: Beat) -> Result<bool, String> {
        let node = self.nodes.nodes.get(beat.worker);
        let running = node.map(|n| n.snapshot());
        let sent = self
            .client
            .post(format!("{}{HEARTBEAT_PATH}", self.base(via)))
            .header(WORKER_TOKEN_HEADER, &self.worker_token)
            .json(&self.heartbeat_body(beat, running.as_ref()))
            .send()
            .await;
        let ack = match answer(sent).await? {
            (200..=299, body) => serde_json::from_slice::<HeartbeatResponse>(&body)
                .map_err(|e| format!("heartbeat answer: {e}"))?,
            (status, body) => return Err(format!("{status}: {}", message(&body))),
        };
        if let (Some(node), Some(running)) = (node, running) {
            for key in ack.release_sessions.iter().filter_map(|s| s.to_key().ok()) {
                if let Some((_, incarnation)) = running.live.iter().find(|(k, _)| *k == key) {
                    node.release_if_incarnation(&key, *incarnation);
                }
            }
        }
        Ok(ack.accepted)
    }

    /// Records in the backend (none to read on the servers' own memory
    /// store), and sessions on the nodes beyond `slots`.
    async fn recount(&self, slots: u32) -> anyhow::Result<Recount> {
        let audit = match self.deployment.backend() {
            Backend::Memory => Default::default(),
            _ => audit(self.deployment.stores()[0].as_ref())
                .await
                .context("recount of the records")?,
        };
        Ok(Recount {
            audit,
            worker_side_over: self.nodes.over(slots),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn reads_the_port() {
        assert_eq!(super::port_of("http://127.0.0.1:18080").unwrap(), 18080);
        assert_eq!(super::port_of("http://localhost").unwrap(), 80);
        assert_eq!(super::port_of("http://[::1]:9000/").unwrap(), 9000);
        assert_eq!(super::port_of("http://[::1]").unwrap(), 80);
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b1"),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgres://u:p@localhost/x?sslmode=disable", "b2"),
            "postgres://u:p@localhost/b2?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://localhost", "b3"),
            "postgresql://localhost/b3"
        );
    }
}
