//! The `http://` target: real `vdi-cluster serve` processes (one per
//! replica, all on one backend namespace), simulated worker nodes behind an
//! HTTP endpoint of this process, and students and workers speaking the
//! documented API:
//!
//! * students: `POST /api/vdi/sessions {"examId","userId"}` with the
//!   cluster token (the exam application's credential);
//! * workers: `POST /api/vdi/workers/heartbeat` with seed 000's body, and
//!   `POST {apiBaseUrl}/api/vdi/cluster/allocate|release|prewarm` served
//!   here, checking `x-cluster-token`.
//!
//! Each simulated worker's `apiBaseUrl` is `http://127.0.0.1:PORT/{code}`,
//! so one listener serves them all. The servers run with `RUST_LOG=warn`;
//! their output goes to a log file under the system's temporary directory.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::audit::audit;
use crate::cluster::BOOT;
use crate::cpu;
use crate::deploy::{Backend, Deployment};
use crate::driver::{Plain, drive};
use crate::fleet::worker_code;
use crate::heartbeat::{HeartbeatConfig, HeartbeatReport};
use crate::surge::{AllocOutcome, AllocTally, SurgeConfig, SurgeReport, student};

/// Header of the shared cluster token.
const CLUSTER_TOKEN_HEADER: &str = "x-cluster-token";

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
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionRequest {
    exam_id: String,
    user_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrewarmRequest {
    count: u32,
}

/// What the simulated nodes hold.
#[derive(Debug, Default)]
struct Nodes {
    token: String,
    sessions: Mutex<HashMap<String, HashSet<(String, String)>>>,
    allocate_calls: AtomicU64,
}

impl Nodes {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(CLUSTER_TOKEN_HEADER)
            .is_some_and(|v| v.as_bytes() == self.token.as_bytes())
    }
}

type Answer = (StatusCode, Json<serde_json::Value>);

fn unauthorized() -> Answer {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "error": "Unauthorized", "message": "bad x-cluster-token", "code": 401
        })),
    )
}

async fn node_allocate(
    State(nodes): State<Arc<Nodes>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    Json(body): Json<SessionRequest>,
) -> Answer {
    if !nodes.authorized(&headers) {
        return unauthorized();
    }
    nodes.allocate_calls.fetch_add(1, Ordering::Relaxed);
    let connection = format!("rdp://{code}/{}/{}", body.exam_id, body.user_id);
    nodes
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(code)
        .or_default()
        .insert((body.exam_id, body.user_id));
    (
        StatusCode::OK,
        Json(serde_json::json!({ "session": { "connection": connection } })),
    )
}

async fn node_release(
    State(nodes): State<Arc<Nodes>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    Json(body): Json<SessionRequest>,
) -> Answer {
    if !nodes.authorized(&headers) {
        return unauthorized();
    }
    let released = nodes
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&code)
        .is_some_and(|s| s.remove(&(body.exam_id, body.user_id)));
    (
        StatusCode::OK,
        Json(serde_json::json!({ "released": released })),
    )
}

async fn node_prewarm(
    State(nodes): State<Arc<Nodes>>,
    headers: HeaderMap,
    Json(body): Json<PrewarmRequest>,
) -> Answer {
    if !nodes.authorized(&headers) {
        return unauthorized();
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({ "accepted": body.count })),
    )
}

/// A seed 000 heartbeat body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HeartbeatBody {
    code: String,
    name: String,
    api_base_url: String,
    total_cpu_cores: f64,
    total_memory_mb: u64,
    reserved_cpu_cores: f64,
    reserved_memory_mb: u64,
    vm_cpu_cores: f64,
    vm_memory_mb: u64,
    active_sessions: u32,
    boot_id: String,
    seq: u64,
}

/// Servers, simulated nodes and a client, on a fresh backend namespace.
#[derive(Debug)]
pub struct HttpCluster {
    deployment: Deployment,
    servers: Vec<Child>,
    bases: Vec<String>,
    nodes: Arc<Nodes>,
    nodes_addr: SocketAddr,
    node_task: tokio::task::JoinHandle<()>,
    client: reqwest::Client,
    log: PathBuf,
}

impl HttpCluster {
    /// Opens a namespace on `setup.server_store`, starts the simulated
    /// nodes and `setup.replicas` servers on it, and waits until every
    /// server is ready.
    pub async fn start(setup: &HttpSetup) -> anyhow::Result<Self> {
        let replicas = if setup.server_store == Backend::Memory {
            1
        } else {
            setup.replicas.max(1)
        };
        let deployment = Deployment::open(&setup.server_store, 1, setup.pg_pool).await?;
        let token = random_token();
        let nodes = Arc::new(Nodes {
            token: token.clone(),
            ..Nodes::default()
        });
        let app = Router::new()
            .route("/{code}/api/vdi/cluster/allocate", post(node_allocate))
            .route("/{code}/api/vdi/cluster/release", post(node_release))
            .route("/{code}/api/vdi/cluster/prewarm", post(node_prewarm))
            .with_state(Arc::clone(&nodes));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let nodes_addr = listener.local_addr()?;
        let node_task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let log = std::env::temp_dir().join(format!(
            "vdi-loadgen-server-{}.log",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let mut cluster = Self {
            deployment,
            servers: Vec::new(),
            bases: Vec::new(),
            nodes,
            nodes_addr,
            node_task,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(Duration::from_secs(60))
                .build()?,
            log,
        };
        if let Err(e) = cluster.spawn_servers(setup, replicas, &token).await {
            cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    async fn spawn_servers(
        &mut self,
        setup: &HttpSetup,
        replicas: usize,
        token: &str,
    ) -> anyhow::Result<()> {
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
                .args(["--worker-cluster-token", token])
                .args(["--jwt-secret", &random_token()])
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
    async fn cpu_probe(&self) -> cpu::Probe {
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

    /// The cluster token.
    fn token(&self) -> &str {
        &self.nodes.token
    }

    fn heartbeat_body(&self, i: usize, slots: u32, seq: u64) -> HeartbeatBody {
        let code = worker_code(i);
        HeartbeatBody {
            api_base_url: format!("http://{}/{code}", self.nodes_addr),
            name: code.clone(),
            code,
            total_cpu_cores: f64::from(slots),
            total_memory_mb: u64::from(slots) * 1024,
            reserved_cpu_cores: 0.0,
            reserved_memory_mb: 0,
            vm_cpu_cores: 1.0,
            vm_memory_mb: 1024,
            active_sessions: 0,
            boot_id: BOOT.to_owned(),
            seq,
        }
    }

    /// Sends worker `i`'s heartbeat number `seq` through server `via`.
    async fn heartbeat(&self, via: usize, i: usize, slots: u32, seq: u64) -> Result<(), String> {
        let response = self
            .client
            .post(format!("{}/api/vdi/workers/heartbeat", self.base(via)))
            .json(&self.heartbeat_body(i, slots, seq))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }

    /// Registers `workers` workers with their first heartbeat.
    pub async fn register(self: &Arc<Self>, workers: usize, slots: u32) -> anyhow::Result<()> {
        let c = Arc::clone(self);
        let deadline = Instant::now() + Duration::from_secs(300);
        let done = drive::<Plain, _, _>(32, workers, deadline, &ProgressBar::hidden(), move |i| {
            let c = Arc::clone(&c);
            async move { c.heartbeat(i, i, slots, 1).await }
        })
        .await;
        if let Some(e) = done.tally.first_error {
            bail!("registering workers over HTTP: {e}");
        }
        Ok(())
    }

    /// One student's `POST /api/vdi/sessions` through server `via`.
    async fn allocate(&self, via: usize, exam: &str, user: &str) -> AllocOutcome {
        let sent = self
            .client
            .post(format!("{}/api/vdi/sessions", self.base(via)))
            .header(CLUSTER_TOKEN_HEADER, self.token())
            .json(&serde_json::json!({ "examId": exam, "userId": user }))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return AllocOutcome::Failed(e.to_string()),
        };
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        match status.as_u16() {
            201 => AllocOutcome::Placed {
                retries: 0,
                failed_calls: 0,
            },
            200 => AllocOutcome::Existing,
            503 if String::from_utf8_lossy(&body).contains("capacity") => AllocOutcome::NoCapacity,
            _ => AllocOutcome::Failed(format!("{status}: {}", String::from_utf8_lossy(&body))),
        }
    }

    /// One student's `DELETE /api/vdi/sessions/:examId/:userId`.
    async fn release(&self, via: usize, exam: &str, user: &str) -> Result<(), String> {
        let response = self
            .client
            .delete(format!("{}/api/vdi/sessions/{exam}/{user}", self.base(via)))
            .header(CLUSTER_TOKEN_HEADER, self.token())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }

    /// Sessions the simulated nodes run beyond `slots` each.
    fn node_over(&self, slots: u32) -> u64 {
        self.nodes
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|s| (s.len() as u64).saturating_sub(u64::from(slots)))
            .sum()
    }

    /// Stops the servers and the nodes, and removes the namespace.
    pub async fn stop(mut self) {
        for s in &mut self.servers {
            let _ = s.start_kill();
        }
        for s in &mut self.servers {
            let _ = tokio::time::timeout(Duration::from_secs(10), s.wait()).await;
        }
        self.node_task.abort();
        self.deployment.close().await;
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `surge` through the servers: registration by heartbeats, a warm-up
/// (allocate, then release), then every student at once, and recounts on
/// both sides (dispatch records in the backend; sessions on the nodes).
pub async fn http_surge(
    cluster: &Arc<HttpCluster>,
    config: &SurgeConfig,
    progress: &ProgressBar,
) -> anyhow::Result<SurgeReport> {
    cluster.register(config.workers, config.slots).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let c = Arc::clone(cluster);
    let warm = drive::<AllocTally, _, _>(
        config.concurrency,
        config.warmup,
        deadline,
        &ProgressBar::hidden(),
        move |i| {
            let c = Arc::clone(&c);
            async move { c.allocate(i, "warmup", &format!("w-{i}")).await }
        },
    )
    .await;
    if let Some(e) = warm.tally.first_error {
        bail!("warm-up over HTTP: {e}");
    }
    let c = Arc::clone(cluster);
    let released = drive::<Plain, _, _>(
        config.concurrency,
        config.warmup,
        deadline,
        &ProgressBar::hidden(),
        move |i| {
            let c = Arc::clone(&c);
            async move { c.release(i, "warmup", &format!("w-{i}")).await }
        },
    )
    .await;
    if let Some(e) = released.tally.first_error {
        bail!("warm-up release over HTTP: {e}");
    }

    let keys: Arc<Vec<(String, String)>> = Arc::new(
        (0..config.students)
            .map(|i| {
                let k = student(i, config.exams);
                (k.exam_id.to_string(), k.user_id.to_string())
            })
            .collect(),
    );
    progress.set_length(config.students as u64);
    progress.set_position(0);
    let mut probe = cluster.cpu_probe().await;
    let before = probe.sample().await;
    let deadline = Instant::now() + config.time_limit;
    let c = Arc::clone(cluster);
    let driven = drive::<AllocTally, _, _>(
        config.concurrency,
        config.students,
        deadline,
        progress,
        move |i| {
            let (c, keys) = (Arc::clone(&c), Arc::clone(&keys));
            async move {
                let (exam, user) = &keys[i];
                c.allocate(i, exam, user).await
            }
        },
    )
    .await;
    let cpu = cpu::between(&before, &probe.sample().await);
    let audit = match cluster.deployment.backend() {
        Backend::Memory => Default::default(),
        _ => audit(cluster.deployment.stores()[0].as_ref())
            .await
            .context("recount after the surge")?,
    };
    Ok(SurgeReport {
        latency: driven.latencies.summary(driven.elapsed),
        tally: driven.tally,
        not_started: driven.not_started,
        audit,
        worker_side_over: cluster.node_over(config.slots),
        cpu,
        breakdown: None,
    })
}

/// `heartbeat` through the servers.
pub async fn http_heartbeats(
    cluster: &Arc<HttpCluster>,
    config: &HeartbeatConfig,
    progress: &ProgressBar,
) -> anyhow::Result<HeartbeatReport> {
    cluster.register(config.workers, config.slots).await?;
    let workers = config.workers.max(1);
    let seqs: Arc<Vec<AtomicU64>> = Arc::new((0..workers).map(|_| AtomicU64::new(1)).collect());
    progress.set_length(config.heartbeats as u64);
    progress.set_position(0);
    let mut probe = cluster.cpu_probe().await;
    let before = probe.sample().await;
    let deadline = Instant::now() + config.time_limit;
    let (c, slots) = (Arc::clone(cluster), config.slots);
    let driven = drive::<Plain, _, _>(
        config.concurrency,
        config.heartbeats,
        deadline,
        progress,
        move |i| {
            let w = i % workers;
            let seq = seqs[w].fetch_add(1, Ordering::Relaxed) + 1;
            let c = Arc::clone(&c);
            async move { c.heartbeat(i, w, slots, seq).await }
        },
    )
    .await;
    let cpu = cpu::between(&before, &probe.sample().await);
    Ok(HeartbeatReport {
        latency: driven.latencies.summary(driven.elapsed),
        accepted: driven.tally.ok,
        stale: 0,
        errors: driven.tally.errors,
        first_error: driven.tally.first_error,
        cpu,
    })
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
