//! The game day's processes: `vdi-cluster serve` replicas, `vdi-cluster
//! worker` agents with the simulated provisioner, and a private
//! `redis-server`. Each is a real child process on 127.0.0.1 that the
//! timeline signals (SIGKILL, SIGSTOP, SIGCONT) and starts again with the
//! same flags; each is killed and reaped when its guard drops, also when
//! the run fails or is interrupted.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};

/// A child process with its flags, so that it can be started again; its
/// output is appended to a log file. Killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub(crate) struct Proc {
    /// What the tables call it (`replica-1`, `agent-03`, `redis`).
    pub(crate) name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    stopped: bool,
}

impl Proc {
    /// Starts `program args` with a clean environment (`PATH` and `env`
    /// only: no variable of the caller's shell becomes a flag's fallback).
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: Vec<String>,
        env: Vec<(String, String)>,
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut proc = Self {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            env,
            log: log_dir.join(format!("{name}.log")),
            child: None,
            stopped: false,
        };
        proc.start()?;
        Ok(proc)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("log file {}", self.log.display()))?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {} ({})", self.name, self.program.display()))?;
        self.child = Some(child);
        self.stopped = false;
        Ok(())
    }

    /// The running process's id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self.pid().context("not running")?;
        let pid = Pid::from_raw(i32::try_from(pid)?).context("pid 0")?;
        kill_process(pid, signal).with_context(|| format!("signal {:?} to {}", signal, self.name))
    }

    /// SIGSTOP: the process stays, frozen (a partition: it neither answers
    /// nor heartbeats).
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::STOP)?;
        self.stopped = true;
        Ok(())
    }

    /// SIGCONT after [`stop`](Self::stop).
    pub(crate) fn resume(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::CONT)?;
        self.stopped = false;
        Ok(())
    }

    /// Whether it is SIGSTOPped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
    }

    /// SIGKILL (if running), then the same command again: a new process
    /// (for an agent, a new boot id).
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.start()
    }

    /// Whether it is running.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// An error if the process exited by itself.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!(
                "{} exited by itself ({status}); its log: {}\n{}",
                self.name,
                self.log.display(),
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// Whether its log has a line containing `needle`.
    pub(crate) fn logged(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(needle))
    }

    /// The last `lines` lines of its log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `redis-server` of this run on a free loopback port, its data in a
/// directory of its own (on `/dev/shm` when there is one), appending
/// every write to its AOF before answering (`appendfsync always`): a
/// SIGKILL and a start on the same directory is a restart of the store
/// that loses no acknowledged write. Nobody else's data is on it. Killed,
/// and its directory removed, on drop.
#[derive(Debug)]
pub(crate) struct PrivateRedis {
    proc: Proc,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    /// Starts `binary`, or answers why it cannot (no such binary).
    pub(crate) async fn start(binary: &Path, log_dir: &Path) -> anyhow::Result<Self> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "vdi-gameday-redis-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut last = None;
        // Another process may take the free port first: try another one.
        for _ in 0..5 {
            let port = free_port()?;
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir.to_string_lossy(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            let mut proc = match Proc::spawn("redis", binary, args, Vec::new(), log_dir) {
                Ok(p) => p,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            };
            match wait_redis(&mut proc, port, Duration::from_secs(10)).await {
                Ok(()) => return Ok(Self { proc, port, dir }),
                Err(e) => last = Some(e),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last.unwrap_or_else(|| anyhow::anyhow!("redis-server would not start")))
    }

    /// `redis://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the store is down.
    pub(crate) fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts it again on the same port and data, and waits until it
    /// answers (it replays its AOF first).
    pub(crate) async fn start_again(&mut self) -> anyhow::Result<()> {
        self.proc.restart()?;
        wait_redis(&mut self.proc, self.port, Duration::from_secs(30)).await
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.proc.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until the `redis-server` of `proc` answers on `port`.
async fn wait_redis(proc: &mut Proc, port: u16, bound: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + bound;
    loop {
        proc.check_alive()?;
        if ping(port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("redis-server on port {port} never answered PING");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a Redis on `port` answers `PING`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
}

/// A directory for the run's logs, kept when the run fails.
#[derive(Debug)]
pub(crate) struct LogDir {
    /// Where.
    pub(crate) path: PathBuf,
    /// Remove it on drop.
    pub(crate) remove: bool,
}

impl LogDir {
    /// A fresh directory `vdi-{scenario}-…` under the temporary directory.
    pub(crate) fn new(scenario: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "vdi-{scenario}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&path)?;
        // A marker, so that nobody mistakes the directory for data.
        let _ = File::create(path.join("README"))
            .and_then(|mut f| writeln!(f, "Logs of one vdi-loadgen {scenario} run."));
        Ok(Self { path, remove: true })
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
