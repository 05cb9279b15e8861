//! A control plane process (`serve`) with the tests' short timings.

use super::process::{Proc, url_in};
use super::{
    CLUSTER_TOKEN, HEARTBEAT_SEC, JWT_SECRET, OFFLINE_SEC, RECONCILE_SEC, TTL_SEC, WORKER_TOKEN,
};

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
    /// `--allocate-timeout-sec` (5): what is left of it after a call is
    /// how long a paced start waits for its worker's start permit.
    pub allocate_timeout_sec: u64,
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
            allocate_timeout_sec: 5,
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
            &options.allocate_timeout_sec.to_string(),
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
        let line = proc.wait_line("Listening on http").await;
        let url = url_in(&line);
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            proc,
            url,
            port,
            options,
        }
    }

    /// The API base workers are given (`…/api`, as in the exam platform's runbook).
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
