//! Resolution of the flags into a [`WorkerConfig`]: the runbook's
//! `WORKER_PUBLIC_PORT`, defaults, and validation that names the variable
//! at fault. (The sources' names for our variables are aliases, applied
//! before parsing: `super::aliases`.)

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use vdi_cluster_core::network::NetworkPolicy;
use vdi_cluster_core::{CapacityInput, CapacitySpec, ValidationError, WorkerDescription, WorkerId};
use vdi_cluster_protocol::credentials::check_secret_length;

use super::args::{ProvisionerKind, WorkerArgs};
use crate::provision::SimulatedCheck;
use crate::tls::TlsSettings;

/// A configuration that parses but does not hold together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Default CPU cores of one session's VM (the runbook's `EXAM_VM_CPUS=1.5`).
pub const DEFAULT_VM_CPUS: f64 = 1.5;
/// Default port of the worker-side API (the runbook's `WORKER_PUBLIC_PORT=3000`).
pub const DEFAULT_PORT: u16 = 3000;
/// Default memory of one session's VM, MB (the runbook's `EXAM_VM_MEMORY_MB=2048`).
pub const DEFAULT_VM_MEMORY_MB: u64 = 2048;

/// Node size and session profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityConfig {
    /// CPU cores kept for the host.
    pub reserved_cpus: f64,
    /// Memory kept for the host, MB.
    pub reserved_memory_mb: u64,
    /// CPU cores of one session's VM.
    pub vm_cpus: f64,
    /// Memory of one session's VM, MB.
    pub vm_memory_mb: u64,
    /// CPU cores of the node; `None`: the host's.
    pub total_cpus: Option<f64>,
    /// Memory of the node, MB; `None`: the host's.
    pub total_memory_mb: Option<u64>,
}

impl CapacityConfig {
    /// The capacity of a node with `host_cpus` cores and `host_memory_mb`
    /// (used where no override is set), validated by core's formula.
    pub fn spec(
        &self,
        host_cpus: f64,
        host_memory_mb: u64,
    ) -> Result<CapacitySpec, ValidationError> {
        CapacitySpec::new(self.input(host_cpus, host_memory_mb))
    }

    /// The inputs of the slot formula.
    pub fn input(&self, host_cpus: f64, host_memory_mb: u64) -> CapacityInput {
        CapacityInput {
            total_cpu_cores: self.total_cpus.unwrap_or(host_cpus),
            total_memory_mb: self.total_memory_mb.unwrap_or(host_memory_mb),
            reserved_cpu_cores: self.reserved_cpus,
            reserved_memory_mb: self.reserved_memory_mb,
            vm_cpu_cores: self.vm_cpus,
            vm_memory_mb: self.vm_memory_mb,
        }
    }
}

/// How sessions are started.
#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionerConfig {
    /// In memory.
    Simulated {
        /// Time to start one session.
        start_latency: Duration,
        /// Share of starts that fail.
        failure_rate: f64,
        /// How a rehearsal's check answers.
        check: SimulatedCheck,
    },
    /// A program.
    Command {
        /// The program.
        program: PathBuf,
        /// Longest run.
        timeout: Duration,
    },
}

/// The resolved configuration of a worker node.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The worker's code.
    pub code: WorkerId,
    /// Name, base URL (empty: derived from the bound address), zone,
    /// labels and capabilities.
    pub description: WorkerDescription,
    /// Control plane API base (`…/api`), or several (replicas on one
    /// store), comma-separated in the order tried, each checked by
    /// [`check_base_urls`]; or one `grpc://host:port`
    /// (`check_control_planes`). [`control_planes`](Self::control_planes)
    /// lists them.
    pub control_plane: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address the gRPC worker service listens on, if it is served.
    pub grpc_listen: Option<SocketAddr>,
    /// Shared cluster token expected in `x-cluster-token`.
    pub cluster_token: String,
    /// Shared heartbeat token.
    pub worker_token: Option<String>,
    /// Join token.
    pub join_token: Option<String>,
    /// Where the joined credential is kept.
    pub credential_file: Option<PathBuf>,
    /// Node size and session profile.
    pub capacity: CapacityConfig,
    /// Heartbeat interval until the control plane says otherwise.
    pub heartbeat_interval: Duration,
    /// Backoff cap while heartbeats fail.
    pub backoff_max: Duration,
    /// Timeout of one call to the control plane.
    pub control_plane_timeout: Duration,
    /// Provisioning.
    pub provisioner: ProvisionerConfig,
    /// Where the exam desktops may connect, handed to the provisioning
    /// program.
    pub network_policy: NetworkPolicy,
    /// Report CPU, memory and disk usage.
    pub report_usage: bool,
    /// Deregister on exit.
    pub deregister_on_exit: bool,
    /// `--max-concurrent-starts` (`None`: derived from the slots when a
    /// heartbeat is sent).
    pub max_concurrent_starts: Option<u32>,
    /// TLS: this worker's certificate, the CA, mutual TLS.
    pub tls: TlsSettings,
}

impl WorkerConfig {
    /// The control plane API bases, in the order tried.
    pub fn control_planes(&self) -> Vec<String> {
        self.control_plane
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect()
    }
}

impl fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("code", &self.code)
            .field("description", &self.description)
            .field("control_plane", &self.control_plane)
            .field("listen", &self.listen)
            .field("capacity", &self.capacity)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("provisioner", &self.provisioner)
            .field("network_policy", &self.network_policy)
            .field("worker_token", &self.worker_token.as_ref().map(|_| ".."))
            .field("join_token", &self.join_token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn seconds(name: &str, value: f64, min: f64, max: f64) -> Result<Duration, ConfigError> {
    if !value.is_finite() || value < min || value > max {
        return Err(ConfigError(format!(
            "{name} must be from {min} to {max} seconds, got {value}"
        )));
    }
    Ok(Duration::from_secs_f64(value))
}

/// Checks a control-plane or worker base URL: `http(s)://host…`.
pub fn check_base_url(name: &str, url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim().trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(trimmed.to_owned()),
        _ => Err(ConfigError(format!(
            "{name} must be an http:// or https:// URL, got {url:?}"
        ))),
    }
}

/// Checks a comma-separated list of control-plane base URLs (`name` is
/// the variable): each entry by [`check_base_url`], none empty or repeated.
/// Answers them, in order.
pub fn check_base_urls(name: &str, list: &str) -> Result<Vec<String>, ConfigError> {
    let entries: Vec<&str> = list.split(',').collect();
    let total = entries.len();
    let mut urls: Vec<String> = Vec::with_capacity(total);
    for (i, entry) in entries.into_iter().enumerate() {
        let which = if total == 1 {
            name.to_owned()
        } else {
            format!("{name} (entry {} of {total})", i + 1)
        };
        if total > 1 && entry.trim().is_empty() {
            return Err(ConfigError(format!(
                "{which} is empty: give comma-separated http:// or https:// URLs, got {list:?}"
            )));
        }
        let url = check_base_url(&which, entry)?;
        if urls.iter().any(|u| u.eq_ignore_ascii_case(&url)) {
            return Err(ConfigError(format!("{which} repeats {url:?}")));
        }
        urls.push(url);
    }
    Ok(urls)
}

/// Checks the control-plane option: one `grpc://host:port` (minicloud's
/// gRPC service), or HTTP base URLs as [`check_base_urls`]. Answers the
/// list joined with commas.
pub(super) fn check_control_planes(name: &str, list: &str) -> Result<String, ConfigError> {
    if list.split(',').any(vdi_cluster_grpc::client::is_grpc_url) {
        let url = list.trim().trim_end_matches('/');
        vdi_cluster_grpc::client::endpoint_uri(url).map_err(|e| {
            ConfigError(format!(
                "{name}: {e} (a gRPC control plane is one grpc://host:port, not a list)"
            ))
        })?;
        return Ok(url.to_owned());
    }
    Ok(check_base_urls(name, list)?.join(","))
}

impl WorkerArgs {
    /// Resolves the options, reading the runbook's `WORKER_PUBLIC_PORT`
    /// from the process environment.
    pub fn resolve(&self) -> Result<WorkerConfig, ConfigError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Resolves the options, reading `WORKER_PUBLIC_PORT` through `env`.
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<WorkerConfig, ConfigError> {
        let invalid = |e: ValidationError| ConfigError(e.to_string());
        let code = WorkerId::parse("WORKER_CODE", self.code.trim()).map_err(invalid)?;
        let vm_cpus = self.vm_cpus.unwrap_or(DEFAULT_VM_CPUS);
        let vm_memory_mb = self.vm_memory_mb.unwrap_or(DEFAULT_VM_MEMORY_MB);
        let capacity = CapacityConfig {
            reserved_cpus: self.reserved_cpus,
            reserved_memory_mb: self.reserved_memory_mb,
            vm_cpus,
            vm_memory_mb,
            total_cpus: self.total_cpus,
            total_memory_mb: self.total_memory_mb,
        };
        // Validate the profile with core's rules against a nominal node, so
        // a bad flag fails at start with the field named.
        capacity
            .spec(
                capacity.total_cpus.unwrap_or(1.0),
                capacity.total_memory_mb.unwrap_or(1),
            )
            .map_err(invalid)?;

        let listen = match self.listen {
            Some(addr) => addr,
            None => match non_empty(env("WORKER_PUBLIC_PORT").as_deref()) {
                Some(port) => {
                    let port: u16 = port.parse().map_err(|_| {
                        ConfigError(format!(
                            "WORKER_PUBLIC_PORT must be a port number, got {port:?}"
                        ))
                    })?;
                    SocketAddr::from(([0, 0, 0, 0], port))
                }
                None => SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            },
        };
        let api_base_url = match non_empty(self.api_base_url.as_deref()) {
            Some(url) => check_base_url("WORKER_API_BASE_URL", &url)?,
            None if listen.ip().is_unspecified() => {
                return Err(ConfigError(format!(
                    "WORKER_API_BASE_URL is required when listening on {listen}: the control plane must know how to reach this worker"
                )));
            }
            None => String::new(),
        };
        let description = WorkerDescription {
            name: non_empty(self.name.as_deref()).unwrap_or_else(|| code.to_string()),
            api_base_url,
            zone: non_empty(self.zone.as_deref()),
            labels: self.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
            capabilities: self
                .capabilities
                .iter()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect::<BTreeSet<_>>(),
        };
        description.validate().map_err(invalid)?;

        let cluster_token = non_empty(self.tokens.cluster_token()).ok_or_else(|| {
            ConfigError("WORKER_CLUSTER_TOKEN must not be empty (use the control plane's)".into())
        })?;
        check_secret_length("WORKER_CLUSTER_TOKEN", &cluster_token).map_err(ConfigError)?;
        let worker_token = non_empty(self.tokens.worker_token());
        if let Some(token) = &worker_token {
            check_secret_length("WORKER_HEARTBEAT_TOKEN", token).map_err(ConfigError)?;
        }
        if !(0.0..=1.0).contains(&self.sim_failure_rate) {
            return Err(ConfigError(format!(
                "VDI_SIM_FAILURE_RATE must be from 0 to 1, got {}",
                self.sim_failure_rate
            )));
        }
        let kind = self
            .provisioner
            .unwrap_or(if self.provision_command.is_some() {
                ProvisionerKind::Command
            } else {
                ProvisionerKind::Simulated
            });
        let provisioner = match kind {
            ProvisionerKind::Simulated => ProvisionerConfig::Simulated {
                start_latency: Duration::from_millis(self.sim_start_latency_ms),
                failure_rate: self.sim_failure_rate,
                check: SimulatedCheck::parse(
                    &self.sim_check,
                    Duration::from_millis(self.sim_check_slow_ms),
                )
                .ok_or_else(|| {
                    ConfigError(format!("VDI_SIM_CHECK: unknown answer {}", self.sim_check))
                })?,
            },
            ProvisionerKind::Command => ProvisionerConfig::Command {
                program: self.provision_command.clone().ok_or_else(|| {
                    ConfigError(
                        "the command provisioner needs VDI_PROVISION_COMMAND (--provision-command)"
                            .into(),
                    )
                })?,
                timeout: Duration::from_secs(self.provision_timeout_sec),
            },
        };
        Ok(WorkerConfig {
            code,
            description,
            control_plane: check_control_planes("CONTROL_PLANE_API_BASE", &self.control_plane)?,
            listen,
            grpc_listen: self.grpc_listen,
            cluster_token,
            worker_token,
            join_token: non_empty(self.join_token.as_deref()),
            credential_file: self.credential_file.clone(),
            capacity,
            heartbeat_interval: seconds(
                "HEARTBEAT_INTERVAL_SEC",
                self.heartbeat_interval_sec,
                0.1,
                3600.0,
            )?,
            backoff_max: seconds(
                "HEARTBEAT_BACKOFF_MAX_SEC",
                self.heartbeat_backoff_max_sec,
                0.1,
                3600.0,
            )?,
            control_plane_timeout: Duration::from_millis(self.control_plane_timeout_ms),
            provisioner,
            network_policy: self.network.policy()?,
            report_usage: self.report_usage,
            deregister_on_exit: self.deregister_on_exit,
            max_concurrent_starts: self.max_concurrent_starts,
            tls: self
                .tls
                .settings()
                .map_err(|e| ConfigError(e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests;
