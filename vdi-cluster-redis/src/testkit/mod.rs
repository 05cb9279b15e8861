//! Private Redis deployments for tests (feature `testkit`): a
//! `redis-server` on a free loopback port ([`PrivateRedis`]), a primary
//! with a replica and three sentinels ([`SentinelCluster`]), and a Redis
//! Cluster of three primaries ([`RedisCluster`]), each process killed and
//! its directory removed when dropped, even on panic.
//! The store's own tests and the server's end-to-end tests use them.

mod cluster;
mod sentinel;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vdi_cluster_core::testkit::{backend_unreachable, private_dir};

pub use vdi_cluster_core::testkit::free_port;

pub use cluster::RedisCluster;
pub use sentinel::{FakeSentinel, MASTER, SentinelCluster, until_replica_linked};

/// The installed server binary the private servers run.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A `redis-server` process of this test on a free loopback port, killed
/// (and its directory removed) when dropped, even on panic.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistence: Vec<String>,
}

impl PrivateRedis {
    /// Starts a server with `persistence` arguments (e.g. `["--appendonly",
    /// "yes", "--appendfsync", "always"]`); `None` (skip) if the binary is
    /// missing and `VDI_REQUIRE_BACKENDS` is not `1`.
    pub fn start(persistence: &[&str]) -> Option<Self> {
        if let Err(e) = std::fs::metadata(REDIS_SERVER) {
            return backend_unreachable("redis-server", REDIS_SERVER, &e);
        }
        let dir = private_dir("vdi-redis");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            persistence: persistence.iter().map(|s| (*s).to_owned()).collect(),
        };
        // Another process may take the free port before the server binds
        // it: then try another one.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(log) => last = log,
            }
        }
        panic!("redis-server would not start:\n{last}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log", "--daemonize", "no", "--save", ""])
            .args(&self.persistence)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls until the server answers PING (it may be loading its AOF);
    /// the server's log if it exited instead.
    fn wait_ready(&mut self) -> Result<(), String> {
        for _ in 0..600 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
                return Err(format!("exited with {status}:\n{log}"));
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} never answered PING", self.port);
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGSTOP) without killing it: it neither answers
    /// nor replicates until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a [paused](Self::pause) server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill {signal} {}", child.id());
        }
    }

    /// Whether the server was started and not killed since.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the server again on the same port and directory, as a
    /// replica of the server on `primary` (as an old primary comes back
    /// after a failover).
    pub fn restart_as_replica_of(&mut self, primary: u16) {
        self.persistence.extend([
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            primary.to_string(),
        ]);
        self.restart();
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL: no shutdown, no final save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.spawn() {
            panic!(
                "redis-server did not come back on port {}: {log}",
                self.port
            );
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a server on 127.0.0.1:`port` answers `PING` with `PONG`.
pub fn ping(port: u16) -> bool {
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
