//! The harness: the built `vdi-cluster` binary as real child processes on
//! 127.0.0.1 (a control plane, workers), HTTP helpers, an SSE reader, and
//! polling with a deadline. Every child is killed when its guard drops,
//! even on panic; a failing test prints the tail of each child's log.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use vdi_cluster_server::auth::{Role, mint_jwt};

pub const BIN: &str = env!("CARGO_BIN_EXE_vdi-cluster");
pub const JWT_SECRET: &str = "e2e-secret-0123456789abcdef0123456789abcdef";
pub const CLUSTER_TOKEN: &str = "e2e-cluster-token-0123456789abcdef012345";
pub const WORKER_TOKEN: &str = "e2e-worker-token-0123456789abcdef0123456";

/// Short cluster timings for tests (seconds): heartbeats every second, a
/// worker is unreachable after 3 s of silence, offline after 10 s; reconcile
/// every second.
pub const HEARTBEAT_SEC: u64 = 1;
pub const TTL_SEC: u64 = 3;
pub const OFFLINE_SEC: u64 = 10;
pub const RECONCILE_SEC: u64 = 1;

/// Failure bound of every wait: generous, so a loaded machine does not make
/// a test fail. No test asserts on how long anything took.
pub const DEADLINE: Duration = Duration::from_secs(60);

fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("vdi-cluster-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[String]) -> Self {
        let log = log_dir().join(format!("{name}-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().unwrap();
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
            stdout,
        }
    }

    fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("running");
        Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap()
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(self.pid(), signal)
            .unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.name));
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit before the deadline",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the process's log (stderr) has a line containing
    /// `needle`.
    pub async fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(needle)) {
            assert!(
                Instant::now() < deadline,
                "{} logged no line with {needle:?}; log: {}",
                self.name,
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first stdout line containing `needle`.
    pub async fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(line) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{} exited ({status}) before printing {needle:?}; log: {}",
                    self.name,
                    self.log_tail(40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} printed no line with {needle:?}; log: {}",
                self.name,
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (log {}) ----\n{}",
                self.name,
                self.log.display(),
                self.log_tail(60)
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn url_in(line: &str) -> String {
    let start = line.find("http://").expect("a URL");
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', ';', ')'])
        .to_owned()
}

/// Options of a control plane.
#[derive(Debug, Clone)]
pub struct CpOptions {
    /// `--store` (default memory).
    pub store: Option<String>,
    /// `--redis-prefix`.
    pub redis_prefix: Option<String>,
    /// Require the shared worker token on heartbeats (default); `false`
    /// allows anonymous heartbeats (`--allow-anonymous-heartbeats`).
    pub worker_token: bool,
    /// `--cluster-api-timeout-ms` (3000).
    pub call_timeout_ms: u64,
    /// Further flags.
    pub extra: Vec<String>,
}

impl Default for CpOptions {
    fn default() -> Self {
        Self {
            store: None,
            redis_prefix: None,
            worker_token: true,
            call_timeout_ms: 3000,
            extra: Vec::new(),
        }
    }
}

/// A control plane process.
pub struct ControlPlane {
    pub proc: Proc,
    pub url: String,
    pub port: u16,
    options: CpOptions,
}

impl ControlPlane {
    pub async fn start(options: CpOptions) -> Self {
        Self::start_on(0, options).await
    }

    pub async fn start_on(port: u16, options: CpOptions) -> Self {
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--jwt-secret",
            JWT_SECRET,
            "--worker-cluster-token",
            CLUSTER_TOKEN,
            "--heartbeat-interval-sec",
            &HEARTBEAT_SEC.to_string(),
            "--heartbeat-ttl-sec",
            &TTL_SEC.to_string(),
            "--offline-timeout-sec",
            &OFFLINE_SEC.to_string(),
            "--reconcile-interval-sec",
            &RECONCILE_SEC.to_string(),
            "--cluster-api-timeout-ms",
            &options.call_timeout_ms.to_string(),
            "--allocate-timeout-sec",
            "5",
            "--shutdown-grace-sec",
            "1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(store) = &options.store {
            args.extend(["--store".into(), store.clone()]);
        }
        if let Some(prefix) = &options.redis_prefix {
            args.extend(["--redis-prefix".into(), prefix.clone()]);
        }
        if options.worker_token {
            args.extend(["--worker-heartbeat-token".into(), WORKER_TOKEN.into()]);
        } else {
            args.push("--allow-anonymous-heartbeats".into());
        }
        args.extend(options.extra.iter().cloned());
        let mut proc = Proc::spawn("control-plane", &args);
        let line = proc.wait_line("Listening on http://").await;
        let url = url_in(&line);
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            proc,
            url,
            port,
            options,
        }
    }

    /// The API base workers are given (`…/api`, as in seed 000).
    pub fn api_base(&self) -> String {
        format!("{}/api", self.url)
    }

    /// SIGKILL, then start again on the same port with the same options.
    pub async fn restart(&mut self) {
        self.proc.kill();
        let options = self.options.clone();
        let fresh = Self::start_on(self.port, options).await;
        *self = fresh;
    }
}

/// Options of a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Slots (node of `slots` cores and `slots` GiB, VM 1 core / 1 GiB).
    pub slots: u32,
    /// Send the shared worker token (default).
    pub worker_token: bool,
    /// Report the host's CPU, memory and disk usage.
    pub report_usage: bool,
    /// How long a simulated session takes to start (20 ms).
    pub start_latency_ms: u64,
    /// Further flags.
    pub extra: Vec<String>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            slots: 10,
            worker_token: true,
            report_usage: false,
            start_latency_ms: 20,
            extra: Vec::new(),
        }
    }
}

/// A worker process.
pub struct Worker {
    pub proc: Proc,
    pub code: String,
    pub url: String,
    control_plane: String,
    options: WorkerOptions,
}

impl Worker {
    pub async fn start(code: &str, control_plane_api: &str, options: WorkerOptions) -> Self {
        let slots = options.slots.to_string();
        let memory = (options.slots * 1024).to_string();
        let latency = options.start_latency_ms.to_string();
        let mut args: Vec<String> = [
            "worker",
            "--code",
            code,
            "--listen",
            "127.0.0.1:0",
            "--control-plane",
            control_plane_api,
            "--cluster-token",
            CLUSTER_TOKEN,
            "--total-cpus",
            &slots,
            "--total-memory-mb",
            &memory,
            "--reserved-cpus",
            "0",
            "--reserved-memory-mb",
            "0",
            "--vm-cpus",
            "1",
            "--vm-memory-mb",
            "1024",
            "--heartbeat-interval-sec",
            "1",
            "--heartbeat-backoff-max-sec",
            "1",
            "--control-plane-timeout-ms",
            "1000",
            "--sim-start-latency-ms",
            &latency,
            "--report-usage",
            if options.report_usage {
                "true"
            } else {
                "false"
            },
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if options.worker_token {
            args.extend(["--worker-token".into(), WORKER_TOKEN.into()]);
        }
        args.extend(options.extra.iter().cloned());
        let mut proc = Proc::spawn(code, &args);
        let line = proc.wait_line(&format!("Worker {code} listening on")).await;
        Self {
            proc,
            code: code.to_owned(),
            url: url_in(&line),
            control_plane: control_plane_api.to_owned(),
            options,
        }
    }

    /// A new process of the same worker (SIGKILL first if still running).
    pub async fn restart(&mut self) {
        self.proc.kill();
        let fresh = Self::start(&self.code, &self.control_plane, self.options.clone()).await;
        *self = fresh;
    }

    /// The worker's own view (`GET /api/vdi/cluster/status`).
    pub async fn status(&self) -> Value {
        let r = http()
            .get(format!("{}/api/vdi/cluster/status", self.url))
            .header("x-cluster-token", CLUSTER_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "status of {}", self.code);
        r.json().await.unwrap()
    }

    /// `(examId/userId)` of the sessions the worker runs.
    pub async fn session_keys(&self) -> Vec<String> {
        let status = self.status().await;
        let mut keys: Vec<String> = status["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    s["examId"].as_str().unwrap(),
                    s["userId"].as_str().unwrap()
                )
            })
            .collect();
        keys.sort();
        keys
    }

    /// A direct call to the worker-side API with the cluster token.
    pub async fn call(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = http()
            .post(format!("{}{path}", self.url))
            .header("x-cluster-token", CLUSTER_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The exam application's credential: a SERVICE JWT.
pub fn service_token() -> String {
    mint_jwt(
        JWT_SECRET.as_bytes(),
        "e2e-exam-app",
        &[Role::Service],
        Duration::from_secs(3600),
        None,
        None,
    )
    .unwrap()
}

pub fn admin_token() -> String {
    mint_jwt(
        JWT_SECRET.as_bytes(),
        "e2e-admin",
        &[Role::Admin],
        Duration::from_secs(3600),
        None,
        None,
    )
    .unwrap()
}

/// A client of a control plane's API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    admin: String,
    service: String,
}

impl Api {
    pub fn new(url: &str) -> Self {
        Self {
            base: url.to_owned(),
            http: http(),
            admin: admin_token(),
            service: service_token(),
        }
    }

    /// An admin request; transport errors are returned, not panics.
    pub async fn try_admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.try_admin(method, path, body).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.admin(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn summary(&self) -> Value {
        self.get("/api/vdi/workers/summary").await
    }

    pub async fn worker(&self, code: &str) -> Value {
        self.get(&format!("/api/vdi/workers/{code}")).await
    }

    pub async fn reconcile(&self) -> Value {
        let (status, body) = self
            .admin(Method::POST, "/api/vdi/workers/reconcile", None)
            .await;
        assert_eq!(status, 200, "reconcile: {body}");
        body
    }

    /// `(examId/userId)` of the dispatches on a worker.
    pub async fn worker_session_keys(&self, code: &str) -> Vec<String> {
        let body = self.get(&format!("/api/vdi/workers/{code}/sessions")).await;
        let mut keys: Vec<String> = body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}/{}",
                    s["examId"].as_str().unwrap(),
                    s["userId"].as_str().unwrap()
                )
            })
            .collect();
        keys.sort();
        keys
    }

    /// The session API, with a SERVICE token (the exam application).
    pub async fn try_allocate(
        &self,
        exam: &str,
        user: &str,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let r = self
            .http
            .post(format!("{}/api/vdi/sessions", self.base))
            .bearer_auth(&self.service)
            .json(&json!({"examId": exam, "userId": user}))
            .send()
            .await?;
        let status = r.status();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// Allocates and expects success (200 or 201); returns the session.
    pub async fn allocate(&self, exam: &str, user: &str) -> Value {
        let (status, body) = self.try_allocate(exam, user).await.unwrap();
        assert!(
            status == 200 || status == 201,
            "allocate {exam}/{user}: {status} {body}"
        );
        body
    }

    pub async fn session(&self, exam: &str, user: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}/api/vdi/sessions/{exam}/{user}", self.base))
            .bearer_auth(&self.service)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn release(&self, exam: &str, user: &str) -> Value {
        let r = self
            .http
            .delete(format!("{}/api/vdi/sessions/{exam}/{user}", self.base))
            .bearer_auth(&self.service)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with
/// `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(what, DEADLINE, check).await
}

/// [`eventually`] with another bound, for waits that include a lease or a
/// timeout of their own.
pub async fn eventually_within<T, F, Fut>(what: &str, bound: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + bound;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        // A bound on how long to poll, not a measurement of speed.
        if Instant::now() >= deadline {
            panic!("gave up waiting for {what} after {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the control plane lists `code` with `field == value`.
pub async fn wait_worker(api: &Api, code: &str, field: &str, value: Value) -> Value {
    eventually(&format!("{code}.{field} == {value}"), || async {
        let path = format!("/api/vdi/workers/{code}");
        match api.try_admin(Method::GET, &path, None).await {
            Ok((status, w)) if status == 200 && w[field] == value => Some(w),
            _ => None,
        }
    })
    .await
}

/// The events stream (`GET /api/vdi/events`), collected in the background.
pub struct Events {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    pub async fn subscribe(api: &Api) -> Self {
        let mut response = reqwest::Client::new()
            .get(format!("{}/api/vdi/events", api.base))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let mut name = String::new();
                    let mut data = String::new();
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            name = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if !name.is_empty() {
                        let value = serde_json::from_str(&data).unwrap_or(Value::Null);
                        sink.lock().unwrap().push((name, value));
                    }
                }
            }
        });
        let events = Self { seen, task };
        events.wait("ready", |_| true).await;
        events
    }

    /// The first event named `name` matching `pred`.
    pub async fn wait(&self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("a {name} event"), || async {
            self.seen
                .lock()
                .unwrap()
                .iter()
                .find(|(n, v)| n == name && pred(v))
                .map(|(_, v)| v.clone())
        })
        .await
    }

    /// Every event so far named `name`.
    pub fn all(&self, name: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A control plane and workers `w1..wN` with `slots` each, all healthy.
pub struct Cluster {
    pub cp: ControlPlane,
    pub api: Api,
    pub workers: Vec<Worker>,
}

impl Cluster {
    pub async fn start(slots: &[u32], cp: CpOptions) -> Self {
        let cp = ControlPlane::start(cp).await;
        let api = Api::new(&cp.url);
        let mut workers = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let options = WorkerOptions {
                slots: *s,
                ..WorkerOptions::default()
            };
            workers.push(Worker::start(&format!("w{}", i + 1), &cp.api_base(), options).await);
        }
        let cluster = Self { cp, api, workers };
        cluster.wait_all_healthy().await;
        cluster
    }

    pub async fn wait_all_healthy(&self) {
        let n = self.workers.len() as u64;
        eventually("every worker healthy", || async {
            let s = self.api.summary().await;
            (s["healthyWorkers"] == n && s["schedulableWorkers"] == n).then_some(())
        })
        .await;
    }

    pub fn worker(&self, code: &str) -> &Worker {
        self.workers.iter().find(|w| w.code == code).unwrap()
    }

    pub fn worker_mut(&mut self, code: &str) -> &mut Worker {
        self.workers.iter_mut().find(|w| w.code == code).unwrap()
    }
}

/// `worker` → sorted session keys, from an allocation answer list.
pub fn by_worker(sessions: &[Value]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in sessions {
        map.entry(s["workerCode"].as_str().unwrap().to_owned())
            .or_default()
            .push(format!(
                "{}/{}",
                s["examId"].as_str().unwrap(),
                s["userId"].as_str().unwrap()
            ));
    }
    for v in map.values_mut() {
        v.sort();
    }
    map
}
