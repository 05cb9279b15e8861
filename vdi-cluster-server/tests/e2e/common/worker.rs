//! A worker process (`worker`) with simulated provisioning, and direct
//! calls to its own API.

use reqwest::StatusCode;
use serde_json::Value;

use super::api::{http, status_and_json};
use super::process::{Proc, url_in};
use super::sessions::sorted_session_keys;
use super::{CLUSTER_TOKEN, WORKER_TOKEN};

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
        sorted_session_keys(&self.status().await["sessions"])
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
        status_and_json(r).await
    }
}
