//! CPU accounting around a measured phase: this process, the machine, and
//! the backend's server — Redis from its own `INFO cpu`, PostgreSQL by
//! adding up its processes in `/proc` (every database on the server, so
//! other clients count too). Linux `/proc` only; elsewhere the figures are
//! absent.

use vdi_cluster_redis::redis;

/// Clock ticks per second of `/proc` figures (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuSample {
    /// CPU seconds used by this process so far.
    process: Option<f64>,
    /// Busy and total CPU seconds of the machine so far.
    machine: Option<(f64, f64)>,
    /// CPU seconds used by the backend's server so far.
    server: Option<f64>,
    /// CPU seconds used by the control-plane processes so far (`http://`).
    control: Option<f64>,
}

/// CPU used during a phase.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuUse {
    /// CPU seconds of the load generator (client side: the replicas, the
    /// drivers, the simulated workers).
    pub process: Option<f64>,
    /// CPU seconds of the backend's server (Redis or PostgreSQL).
    pub server: Option<f64>,
    /// CPU seconds of the `vdi-cluster serve` processes (`http://` only;
    /// in process, the control plane is part of `process`).
    pub control: Option<f64>,
    /// Share of the machine's CPU that was busy, 0–1 (every process).
    pub machine_busy: Option<f64>,
}

impl CpuUse {
    /// Microseconds of CPU per operation: this process, the backend's
    /// server, the control-plane processes.
    pub fn per_op(&self, ops: u64) -> [Option<f64>; 3] {
        let per = |s: Option<f64>| s.map(|s| s * 1e6 / ops.max(1) as f64);
        [per(self.process), per(self.server), per(self.control)]
    }
}

fn process_seconds() -> Option<f64> {
    pid_seconds("self")
}

/// CPU seconds of process `pid` (a number, or `self`).
fn pid_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at
    // state (field 3); utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

fn machine_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0.0);
    Some(((total - idle) / TICKS_PER_SEC, total / TICKS_PER_SEC))
}

async fn redis_seconds(conn: &mut redis::aio::MultiplexedConnection) -> Option<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await.ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// CPU seconds of every live process named `postgres`.
fn postgres_seconds() -> Option<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != "postgres" {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
            .sum();
        total += ticks / TICKS_PER_SEC;
    }
    Some(total)
}

/// Where CPU use is read from besides this process.
#[derive(Debug)]
pub struct Probe {
    /// The backend's server.
    pub server: ServerProbe,
    /// Control-plane processes (`vdi-cluster serve`), by pid.
    pub control: Vec<u32>,
}

/// Where the backend's server CPU is read from.
#[derive(Debug)]
pub enum ServerProbe {
    /// No server (memory).
    None,
    /// A connection to the Redis server, for `INFO cpu`.
    Redis(redis::aio::MultiplexedConnection),
    /// PostgreSQL processes on this machine.
    Postgres,
}

impl Probe {
    /// Takes a sample.
    pub async fn sample(&mut self) -> CpuSample {
        let server = match &mut self.server {
            ServerProbe::None => None,
            ServerProbe::Redis(conn) => redis_seconds(conn).await,
            ServerProbe::Postgres => postgres_seconds(),
        };
        let control = if self.control.is_empty() {
            None
        } else {
            self.control
                .iter()
                .map(|pid| pid_seconds(&pid.to_string()))
                .sum()
        };
        CpuSample {
            process: process_seconds(),
            machine: machine_seconds(),
            server,
            control,
        }
    }
}

/// CPU used between two samples.
pub fn between(a: &CpuSample, b: &CpuSample) -> CpuUse {
    let diff = |x: Option<f64>, y: Option<f64>| Some(y? - x?);
    CpuUse {
        process: diff(a.process, b.process),
        server: diff(a.server, b.server),
        control: diff(a.control, b.control),
        machine_busy: match (a.machine, b.machine) {
            (Some((busy_a, total_a)), Some((busy_b, total_b))) if total_b > total_a => {
                Some((busy_b - busy_a) / (total_b - total_a))
            }
            _ => None,
        },
    }
}
