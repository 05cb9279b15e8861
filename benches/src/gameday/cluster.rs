//! The cluster under test: `vdi-cluster serve` replicas sharing one store
//! namespace and `vdi-cluster worker` agents (simulated provisioner, many
//! slots each) heartbeating to all of them, every one a process of the
//! release binary on a loopback port of its own that stays the same
//! across restarts (as a host's address does). Secrets travel in the
//! children's environment, never on their command lines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use serde_json::Value;
use vdi_cluster_protocol::cluster::SummaryJson;
use vdi_cluster_protocol::node_status::NodeStatus;
use vdi_cluster_protocol::workers::{WorkerList, WorkerSessionsJson};
use vdi_cluster_protocol::{CLUSTER_TOKEN_HEADER, WORKER_STATUS_PATH};

use super::procs::{Proc, free_port};
use crate::http::{message, mint, random_token};

/// The log line of the replica that holds the background lease.
const LEASE_LINE: &str = "holding the background lease";

/// The control plane's timings for a game day: short, so that a fault is
/// noticed and repaired within seconds (the e2e tests' order of
/// magnitude).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Heartbeat interval the control plane asks workers for, seconds.
    pub heartbeat_sec: u64,
    /// A worker silent this long is unreachable, seconds.
    pub ttl_sec: u64,
    /// A worker silent this long is offline (failure policy), seconds.
    pub offline_sec: u64,
    /// Reconcile passes every this many seconds.
    pub reconcile_sec: u64,
    /// Grace before a session nobody recorded is adopted or stopped, s.
    pub adoption_grace_sec: u64,
    /// How long after activation a session its worker's report omits is
    /// still kept, s (`--live-session-grace-sec`): the longest a record
    /// may outlive its desktop, so the settle window must exceed it.
    pub live_session_grace_sec: u64,
    /// Timeout of the control plane's calls to a worker, ms.
    pub call_timeout_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_sec: 1,
            ttl_sec: 4,
            offline_sec: 12,
            reconcile_sec: 2,
            adoption_grace_sec: 3,
            live_session_grace_sec: 10,
            call_timeout_ms: 2_000,
        }
    }
}

/// How the replicas reach the store.
#[derive(Debug, Clone)]
pub(crate) enum StoreArgs {
    /// `--store redis://… --redis-prefix P`.
    Redis { url: String, prefix: String },
    /// `--store postgres://…/fresh_db`.
    Postgres { url: String },
}

/// A `serve` replica.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) proc: Proc,
    pub(crate) base: String,
}

/// A worker agent: one `vdi-cluster worker` process, one worker code.
#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) proc: Proc,
    pub(crate) code: String,
    pub(crate) base: String,
}

/// The processes, their secrets, and an HTTP client of their APIs.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) replicas: Vec<Replica>,
    pub(crate) agents: Vec<Agent>,
    pub(crate) cluster_token: String,
    pub(crate) admin_jwt: String,
    pub(crate) service_jwt: String,
    pub(crate) client: reqwest::Client,
    /// A client with a short timeout, for the agents' own status.
    pub(crate) probe: reqwest::Client,
}

/// What the cluster is made of.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSpec {
    pub(crate) server_bin: PathBuf,
    pub(crate) store: StoreArgs,
    pub(crate) replicas: usize,
    pub(crate) agents: usize,
    pub(crate) slots: u32,
    pub(crate) start_latency_ms: u64,
    pub(crate) timings: Timings,
    /// More `serve` flags (e.g. `--redis-wait-replicas 1`).
    pub(crate) serve_flags: Vec<String>,
}

impl Cluster {
    /// Starts the replicas one after the other (the first takes the
    /// background lease), then the agents, and waits until every agent is
    /// schedulable.
    pub(crate) async fn start(spec: &ClusterSpec, logs: &Path) -> anyhow::Result<Self> {
        if !spec.server_bin.exists() {
            bail!(
                "{} not found: build it with `cargo build --release -p vdi-cluster-server` or pass --server-bin",
                spec.server_bin.display()
            );
        }
        let jwt_secret = random_token();
        let cluster_token = random_token();
        let worker_token = random_token();
        let mut cluster = Self {
            replicas: Vec::new(),
            agents: Vec::new(),
            admin_jwt: mint(&spec.server_bin, &jwt_secret, "ADMIN").await?,
            service_jwt: mint(&spec.server_bin, &jwt_secret, "SERVICE").await?,
            cluster_token: cluster_token.clone(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(Duration::from_secs(20))
                .build()?,
            probe: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()?,
        };
        let secrets = vec![
            ("JWT_SECRET".to_owned(), jwt_secret),
            ("WORKER_CLUSTER_TOKEN".to_owned(), cluster_token),
            ("WORKER_HEARTBEAT_TOKEN".to_owned(), worker_token),
        ];
        let t = spec.timings;
        for i in 0..spec.replicas.max(1) {
            let port = free_port()?;
            let mut args: Vec<String> = vec![
                "serve".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--replica-id".into(),
                format!("replica-{}", i + 1),
                "--heartbeat-interval-sec".into(),
                t.heartbeat_sec.to_string(),
                "--heartbeat-ttl-sec".into(),
                t.ttl_sec.to_string(),
                "--offline-timeout-sec".into(),
                t.offline_sec.to_string(),
                "--reconcile-interval-sec".into(),
                t.reconcile_sec.to_string(),
                "--adoption-grace-sec".into(),
                t.adoption_grace_sec.to_string(),
                "--live-session-grace-sec".into(),
                t.live_session_grace_sec.to_string(),
                "--cluster-api-timeout-ms".into(),
                t.call_timeout_ms.to_string(),
                "--allocate-timeout-sec".into(),
                "5".into(),
                "--shutdown-grace-sec".into(),
                "1".into(),
                "--webhook-timeout-sec".into(),
                "3".into(),
                // The receiver listens on loopback: a lab's target.
                "--webhook-allow-private".into(),
            ];
            match &spec.store {
                StoreArgs::Redis { url, prefix } => args.extend([
                    "--store".into(),
                    url.clone(),
                    "--redis-prefix".into(),
                    prefix.clone(),
                ]),
                StoreArgs::Postgres { url } => args.extend(["--store".into(), url.clone()]),
            }
            args.extend(spec.serve_flags.iter().cloned());
            let mut env = secrets.clone();
            env.push((
                "RUST_LOG".into(),
                "warn,vdi_cluster_core::service::operations::background=info".into(),
            ));
            let name = format!("replica-{}", i + 1);
            let proc = Proc::spawn(&name, &spec.server_bin, args, env, logs)?;
            cluster.replicas.push(Replica {
                proc,
                base: format!("http://127.0.0.1:{port}"),
            });
            cluster.wait_ready(i, Duration::from_secs(60)).await?;
        }
        let control_plane = cluster
            .replicas
            .iter()
            .map(|r| format!("{}/api", r.base))
            .collect::<Vec<_>>()
            .join(",");
        let slots = spec.slots.max(1);
        for i in 0..spec.agents.max(1) {
            let port = free_port()?;
            let code = format!("gd-{:02}", i + 1);
            let args: Vec<String> = [
                "worker",
                "--code",
                &code,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--control-plane",
                &control_plane,
                "--total-cpus",
                &slots.to_string(),
                "--total-memory-mb",
                &(u64::from(slots) * 1024).to_string(),
                "--reserved-cpus",
                "0",
                "--reserved-memory-mb",
                "0",
                "--vm-cpus",
                "1",
                "--vm-memory-mb",
                "1024",
                "--heartbeat-interval-sec",
                &t.heartbeat_sec.to_string(),
                "--heartbeat-backoff-max-sec",
                "1",
                "--control-plane-timeout-ms",
                "2000",
                "--provisioner",
                "simulated",
                "--sim-start-latency-ms",
                &spec.start_latency_ms.to_string(),
                "--report-usage",
                "false",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            let mut env = secrets.clone();
            env.push(("RUST_LOG".into(), "warn".into()));
            let proc = Proc::spawn(&format!("agent-{code}"), &spec.server_bin, args, env, logs)?;
            cluster.agents.push(Agent {
                proc,
                code,
                base: format!("http://127.0.0.1:{port}"),
            });
        }
        cluster
            .wait_schedulable(spec.agents.max(1), Duration::from_secs(60))
            .await?;
        Ok(cluster)
    }

    /// Waits until replica `i` answers `/readyz`.
    pub(crate) async fn wait_ready(&mut self, i: usize, bound: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            let url = format!("{}/readyz", self.replicas[i].base);
            let ready = self
                .probe
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            self.replicas[i].proc.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {bound:?}: {}",
                    self.replicas[i].proc.name,
                    self.replicas[i].proc.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `n` workers are schedulable.
    pub(crate) async fn wait_schedulable(
        &mut self,
        n: usize,
        bound: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(s) = self.summary().await
                && s.schedulable_workers as usize >= n
            {
                return Ok(());
            }
            for a in &mut self.agents {
                a.proc.check_alive()?;
            }
            if Instant::now() > deadline {
                bail!("{n} workers not schedulable within {bound:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Which replica holds the background lease, by its log (the last one
    /// to say so; the first replica when none has).
    pub(crate) fn leader(&self) -> usize {
        self.replicas
            .iter()
            .position(|r| r.proc.is_running() && r.proc.logged(LEASE_LINE))
            .unwrap_or(0)
    }

    /// The base URL of a running replica, starting at `i` (round robin).
    pub(crate) fn base(&self, i: usize) -> &str {
        &self.replicas[i % self.replicas.len()].base
    }

    /// An admin GET of `path` through the first replica that answers.
    pub(crate) async fn admin_get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let mut last = None;
        for i in 0..self.replicas.len() {
            let sent = self
                .client
                .get(format!("{}{path}", self.base(i)))
                .bearer_auth(&self.admin_jwt)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.with_context(|| format!("GET {path}"));
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.bytes().await.unwrap_or_default();
                    last = Some(anyhow::anyhow!("GET {path}: {status}: {}", message(&body)));
                }
                Err(e) => last = Some(anyhow::anyhow!("GET {path}: {e}")),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("GET {path}: no replica")))
    }

    /// An admin POST through the first replica; the status and JSON body.
    pub(crate) async fn admin_post(
        &self,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let r = self
            .client
            .post(format!("{}{path}", self.base(0)))
            .bearer_auth(&self.admin_jwt)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// `GET /api/vdi/workers/summary`.
    pub(crate) async fn summary(&self) -> anyhow::Result<SummaryJson> {
        self.admin_get("/api/vdi/workers/summary").await
    }

    /// `GET /api/vdi/workers`.
    pub(crate) async fn workers(&self) -> anyhow::Result<WorkerList> {
        self.admin_get("/api/vdi/workers").await
    }

    /// The control plane's records on worker `code`.
    pub(crate) async fn worker_sessions(&self, code: &str) -> anyhow::Result<WorkerSessionsJson> {
        self.admin_get(&format!("/api/vdi/workers/{code}/sessions?limit=10000"))
            .await
    }

    /// An agent's own view of what it runs (`GET /api/vdi/cluster/status`).
    pub(crate) async fn agent_status(&self, i: usize) -> anyhow::Result<NodeStatus> {
        let r = self
            .probe
            .get(format!("{}{WORKER_STATUS_PATH}", self.agents[i].base))
            .header(CLUSTER_TOKEN_HEADER, &self.cluster_token)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("status of {}: {}", self.agents[i].code, r.status());
        }
        Ok(r.json().await?)
    }
}
