//! Provisioning: how a worker node starts and stops the machine behind a
//! student's session, behind the [`Provisioner`] trait.
//!
//! * [`SimulatedProvisioner`] keeps nothing but a counter: every start
//!   waits a configurable latency and fails at a configurable rate. For
//!   demos and tests.
//! * [`CommandProvisioner`] runs a configured program once per action.
//!
//! The worker's session table (idempotency, prewarm pool, capacity) sits
//! above the trait, so a provisioner only starts and stops machines.
//!
//! # The provisioning program
//!
//! The program is run directly (no shell), with standard input closed and
//! the worker's environment minus its secrets, plus:
//!
//! | variable | value |
//! |---|---|
//! | `VDI_ACTION` | `allocate`, `release`, `prewarm`, `discard` or `check` |
//! | `VDI_WORKER_CODE` | this worker's code |
//! | `VDI_EXAM_ID` | the exam |
//! | `VDI_USER_ID` | the student (`allocate`, `release`; empty otherwise) |
//! | `VDI_SESSION` | `release`: the JSON `allocate` printed |
//! | `VDI_MACHINE` | `allocate` of a prewarmed machine, and `discard`: the JSON `prewarm` printed |
//! | `VDI_NETWORK_POLICY` | `allocate`, `prewarm`, `check`: when the desktop is restricted, its policy as JSON (`NetworkPolicyJson`: `restrictInternet`, `allowedDomains`, `allowedCidrs`, `allowedIps`, `originIp`, `enforceStrict`) — the exam's if it was booked with one, else the node's `EXAM_*` default ([`vdi_cluster_core::network::precedence`]); absent otherwise |
//!
//! Exit status 0 is success. `allocate` must print one JSON object on
//! standard output: the session's connection details, handed to the
//! control plane (and the exam application) untouched. `prewarm` must print
//! one JSON object describing the machine; it is given back in
//! `VDI_MACHINE` when an `allocate` of that exam claims the machine, or
//! when the worker discards it. Output of `release` and `discard` is
//! ignored. `check` is a rehearsal before the exam (see
//! [`check`](self::check)): start one test desktop of the exam, check what
//! the provisioner can (the exam's image, the network allow-list, …), stop
//! it, and print one JSON object ([`CheckAnswer`]) — `{}` when all is
//! well, `imagePresent: false` (exit 0) when the exam's image is missing,
//! failed `checks` by name; a non-zero exit means the test desktop did
//! not start. A non-zero exit fails the action with the end of standard error
//! as the message; a run longer than the timeout is killed.
//!
//! With `VDI_NETWORK_POLICY` set, `prewarm` and `allocate` restrict the
//! desktop they start before printing it (and `release` and `discard`
//! lift the rules): once the desktop's address is known, `vdi-cluster
//! network-rules apply --address ADDR` applies the policy's nftables rules
//! and fails (exit 1) when a strict policy's rules cannot be applied,
//! which must fail the action; `vdi-cluster network-rules remove
//! --address ADDR` removes them (see
//! [`network_policy`](crate::network_policy) and
//! `examples/deploy/provision.sh`).

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use vdi_cluster_core::network::NetworkPolicy;
use vdi_cluster_core::{ExamId, SessionKey, WorkerId};
use vdi_cluster_protocol::node::{CheckAnswer, NETWORK_POLICY_VARIABLE, NetworkPolicyJson};

pub mod check;

pub use check::SimulatedCheck;

/// Largest output read from the provisioning program.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// Variables removed from the program's environment: the worker's secrets.
pub const SECRET_VARIABLES: &[&str] = &[
    "WORKER_CLUSTER_TOKEN",
    "WORKER_HEARTBEAT_TOKEN",
    "WORKER_JOIN_TOKEN",
    "JWT_SECRET",
];

/// An idle machine started by `prewarm`, opaque to the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine(pub Value);

/// A provisioning action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The machine could not be started or stopped.
    #[error("provisioning failed: {0}")]
    Failed(String),
    /// The action did not finish in time.
    #[error("provisioning did not finish within {0:?}")]
    Timeout(Duration),
    /// The program's output was not what the action needs.
    #[error("the provisioning program printed no usable result: {0}")]
    BadOutput(String),
    /// The program could not be run.
    #[error("cannot run the provisioning program {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Starts and stops the machines behind sessions.
#[async_trait]
pub trait Provisioner: fmt::Debug + Send + Sync + 'static {
    /// `simulated`, `command`.
    fn kind(&self) -> &'static str;

    /// Starts the session `key` (or hands it the prewarmed `machine` of its
    /// exam), its desktop restricted by `policy`, and returns its
    /// connection details, a JSON object.
    async fn allocate(
        &self,
        key: &SessionKey,
        machine: Option<&Machine>,
        policy: &NetworkPolicy,
    ) -> Result<Value, ProvisionError>;

    /// Stops the session `key`; `session` is what `allocate` returned.
    async fn release(&self, key: &SessionKey, session: &Value) -> Result<(), ProvisionError>;

    /// Starts an idle machine for `exam`, restricted by `policy`.
    async fn prewarm(
        &self,
        exam: &ExamId,
        policy: &NetworkPolicy,
    ) -> Result<Machine, ProvisionError>;

    /// Stops an idle machine that was never claimed.
    async fn discard(&self, exam: &ExamId, machine: &Machine) -> Result<(), ProvisionError>;

    /// A rehearsal's check: starts one test desktop of `exam`, restricted
    /// by `policy`, checks what it can, stops it and answers what it
    /// found; an error when the desktop did not start.
    async fn check(
        &self,
        exam: &ExamId,
        policy: &NetworkPolicy,
    ) -> Result<CheckAnswer, ProvisionError>;
}

/// Sessions that exist only in memory: each start waits `start_latency`
/// (a prewarmed machine is handed over at once) and fails with probability
/// `failure_rate`; a rehearsal's check answers as `check` says.
#[derive(Debug)]
pub struct SimulatedProvisioner {
    worker: WorkerId,
    host: String,
    start_latency: Duration,
    failure_rate: f64,
    started: AtomicU64,
    check: SimulatedCheck,
}

impl SimulatedProvisioner {
    /// A simulator for `worker`, whose desktops claim to be on `host`.
    pub fn new(worker: WorkerId, host: &str, start_latency: Duration, failure_rate: f64) -> Self {
        Self {
            worker,
            host: host.to_owned(),
            start_latency,
            failure_rate: failure_rate.clamp(0.0, 1.0),
            started: AtomicU64::new(0),
            check: SimulatedCheck::Passes,
        }
    }

    /// This simulator, answering a rehearsal's check as `check` says.
    pub fn with_check(mut self, check: SimulatedCheck) -> Self {
        self.check = check;
        self
    }

    fn machine_id(&self) -> (u64, String) {
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        (n, format!("{}-vm-{n}", self.worker))
    }

    /// Waits the start latency (a zero latency does not yield to the
    /// timer, so a simulated node can answer at once).
    async fn start_delay(&self) {
        if !self.start_latency.is_zero() {
            tokio::time::sleep(self.start_latency).await;
        }
    }

    fn fails(&self) -> bool {
        self.failure_rate > 0.0 && rand::random::<f64>() < self.failure_rate
    }
}

#[async_trait]
impl Provisioner for SimulatedProvisioner {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    async fn allocate(
        &self,
        key: &SessionKey,
        machine: Option<&Machine>,
        _policy: &NetworkPolicy,
    ) -> Result<Value, ProvisionError> {
        let (machine_id, prewarmed) = match machine
            .and_then(|m| m.0.get("machineId"))
            .and_then(Value::as_str)
        {
            Some(id) => (id.to_owned(), true),
            None => {
                self.start_delay().await;
                if self.fails() {
                    return Err(ProvisionError::Failed(format!(
                        "simulated start failure on {}",
                        self.worker
                    )));
                }
                (self.machine_id().1, false)
            }
        };
        let port = 5900 + (self.started.load(Ordering::Relaxed) % 1000);
        Ok(json!({
            "provider": "simulated",
            "worker": self.worker.as_str(),
            "machineId": machine_id,
            "prewarmed": prewarmed,
            "protocol": "vnc",
            "host": self.host,
            "port": port,
            "username": "student",
            "examId": key.exam_id.as_str(),
            "userId": key.user_id.as_str(),
        }))
    }

    async fn release(&self, _key: &SessionKey, _session: &Value) -> Result<(), ProvisionError> {
        Ok(())
    }

    async fn prewarm(
        &self,
        exam: &ExamId,
        _policy: &NetworkPolicy,
    ) -> Result<Machine, ProvisionError> {
        self.start_delay().await;
        if self.fails() {
            return Err(ProvisionError::Failed(format!(
                "simulated prewarm failure on {}",
                self.worker
            )));
        }
        let (_, id) = self.machine_id();
        Ok(Machine(json!({"machineId": id, "examId": exam.as_str()})))
    }

    async fn discard(&self, _exam: &ExamId, _machine: &Machine) -> Result<(), ProvisionError> {
        Ok(())
    }

    async fn check(
        &self,
        _exam: &ExamId,
        _policy: &NetworkPolicy,
    ) -> Result<CheckAnswer, ProvisionError> {
        self.start_delay().await;
        self.check.answer(&self.worker).await
    }
}

/// Runs a program per action (see the [module docs](self) for its
/// contract).
#[derive(Debug, Clone)]
pub struct CommandProvisioner {
    program: PathBuf,
    worker: WorkerId,
    timeout: Duration,
}

/// One run of the program.
struct Run<'a> {
    action: &'static str,
    exam: &'a ExamId,
    user: Option<&'a str>,
    session: Option<&'a Value>,
    machine: Option<&'a Machine>,
    policy: Option<&'a NetworkPolicy>,
}

fn tail(bytes: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let skip = text.chars().count().saturating_sub(max_chars);
    text.chars().skip(skip).collect()
}

async fn read_bounded<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(r) = reader {
        let _ = r
            .take(MAX_OUTPUT_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .await;
    }
    out
}

/// Runs `command` (for `action` of `program`) with `input` on standard
/// input (closed when `None`), killing it past `timeout`; what it printed
/// on standard output when it exited 0. A non-zero exit fails with the
/// end of standard error; output beyond [`MAX_OUTPUT_BYTES`] is refused.
/// The node's provisioner and the control plane's scale hook run their
/// programs through it.
pub async fn run_program(
    mut command: tokio::process::Command,
    program: &std::path::Path,
    action: &str,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Vec<u8>, ProvisionError> {
    let spawn_error = |source| ProvisionError::Spawn {
        program: program.display().to_string(),
        source,
    };
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(spawn_error)?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(bytes)) = (stdin, input) {
                use tokio::io::AsyncWriteExt;
                // A program that does not read its input is not an error.
                let _ = pipe.write_all(bytes).await;
            }
        };
        let (_, out, err, status) = tokio::join!(
            feed,
            read_bounded(stdout),
            read_bounded(stderr),
            child.wait()
        );
        (out, err, status)
    };
    let (out, err, status) = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ProvisionError::Timeout(timeout))?;
    let status = status.map_err(spawn_error)?;
    if !status.success() {
        let detail = tail(&err, 400);
        return Err(ProvisionError::Failed(if detail.is_empty() {
            format!("{} {action}: {status}", program.display())
        } else {
            format!("{} {action}: {status}: {detail}", program.display())
        }));
    }
    if out.len() > MAX_OUTPUT_BYTES {
        return Err(ProvisionError::BadOutput(format!(
            "more than {MAX_OUTPUT_BYTES} bytes on standard output"
        )));
    }
    Ok(out)
}

impl CommandProvisioner {
    /// Runs `program` for `worker`, killing runs longer than `timeout`.
    pub fn new(program: PathBuf, worker: WorkerId, timeout: Duration) -> Self {
        Self {
            program,
            worker,
            timeout,
        }
    }

    async fn run(&self, run: Run<'_>) -> Result<Vec<u8>, ProvisionError> {
        let mut command = tokio::process::Command::new(&self.program);
        for name in SECRET_VARIABLES {
            command.env_remove(name);
        }
        // `VDI_NETWORK_POLICY` only when the desktop is restricted.
        let policy = run
            .policy
            .filter(|p| p.restrict_internet)
            .and_then(|p| serde_json::to_string(&NetworkPolicyJson::from(p)).ok());
        match policy {
            Some(policy) => command.env(NETWORK_POLICY_VARIABLE, policy),
            None => command.env_remove(NETWORK_POLICY_VARIABLE),
        };
        command
            .env("VDI_ACTION", run.action)
            .env("VDI_WORKER_CODE", self.worker.as_str())
            .env("VDI_EXAM_ID", run.exam.as_str())
            .env("VDI_USER_ID", run.user.unwrap_or(""))
            .env(
                "VDI_SESSION",
                run.session.map(Value::to_string).unwrap_or_default(),
            )
            .env(
                "VDI_MACHINE",
                run.machine.map(|m| m.0.to_string()).unwrap_or_default(),
            );
        run_program(command, &self.program, run.action, None, self.timeout).await
    }

    fn object(action: &str, out: &[u8]) -> Result<Value, ProvisionError> {
        let value: Value = serde_json::from_slice(out).map_err(|e| {
            ProvisionError::BadOutput(format!(
                "{action}: expected one JSON object on standard output ({e}): {}",
                tail(out, 200)
            ))
        })?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(ProvisionError::BadOutput(format!(
                "{action}: expected a JSON object, got {}",
                tail(value.to_string().as_bytes(), 200)
            )))
        }
    }
}

#[async_trait]
impl Provisioner for CommandProvisioner {
    fn kind(&self) -> &'static str {
        "command"
    }

    async fn allocate(
        &self,
        key: &SessionKey,
        machine: Option<&Machine>,
        policy: &NetworkPolicy,
    ) -> Result<Value, ProvisionError> {
        let out = self
            .run(Run {
                action: "allocate",
                exam: &key.exam_id,
                user: Some(key.user_id.as_str()),
                session: None,
                machine,
                policy: Some(policy),
            })
            .await?;
        Self::object("allocate", &out)
    }

    async fn release(&self, key: &SessionKey, session: &Value) -> Result<(), ProvisionError> {
        self.run(Run {
            action: "release",
            exam: &key.exam_id,
            user: Some(key.user_id.as_str()),
            session: Some(session),
            machine: None,
            policy: None,
        })
        .await
        .map(drop)
    }

    async fn prewarm(
        &self,
        exam: &ExamId,
        policy: &NetworkPolicy,
    ) -> Result<Machine, ProvisionError> {
        let out = self
            .run(Run {
                action: "prewarm",
                exam,
                user: None,
                session: None,
                machine: None,
                policy: Some(policy),
            })
            .await?;
        Self::object("prewarm", &out).map(Machine)
    }

    async fn discard(&self, exam: &ExamId, machine: &Machine) -> Result<(), ProvisionError> {
        self.run(Run {
            action: "discard",
            exam,
            user: None,
            session: None,
            machine: Some(machine),
            policy: None,
        })
        .await
        .map(drop)
    }

    async fn check(
        &self,
        exam: &ExamId,
        policy: &NetworkPolicy,
    ) -> Result<CheckAnswer, ProvisionError> {
        let out = self
            .run(Run {
                action: "check",
                exam,
                user: None,
                session: None,
                machine: None,
                policy: Some(policy),
            })
            .await?;
        let object = Self::object("check", &out)?;
        serde_json::from_value(object).map_err(|e| ProvisionError::BadOutput(format!("check: {e}")))
    }
}

#[cfg(test)]
mod tests;
