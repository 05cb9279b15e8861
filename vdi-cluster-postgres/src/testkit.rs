//! Private PostgreSQL deployments for tests (feature `testkit`): a primary
//! and a hot standby streaming from it, each a server of this test on a
//! free loopback port, in a directory of its own ([`StandbyPair`]). Every
//! process is killed and every directory removed when dropped, even on
//! panic. The store's failover tests and the server's end-to-end tests
//! use them.
//!
//! The servers are Debian's PostgreSQL binaries
//! (`/usr/lib/postgresql/<version>/bin`). PostgreSQL refuses to run as
//! root, so a test running as root runs them as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use vdi_cluster_core::testkit::{backend_unreachable, free_port, private_dir};

/// Where Debian installs the server binaries, one directory per version.
const INSTALLED: &str = "/usr/lib/postgresql";
/// The longest wait for a server to accept connections or to catch up.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// One PostgreSQL server of this test on 127.0.0.1.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    running: bool,
}

/// A primary and a hot standby that streams its changes.
#[derive(Debug)]
pub struct StandbyPair {
    /// The server that accepts writes at first.
    pub primary: PrivatePostgres,
    /// The standby, promoted by [`promote`](Self::promote).
    pub standby: PrivatePostgres,
}

impl StandbyPair {
    /// Starts a primary and a standby; `None` (skip) if PostgreSQL's
    /// binaries are missing and `VDI_REQUIRE_BACKENDS` is not `1`.
    pub async fn start() -> Option<Self> {
        let bin = match server_binaries() {
            Ok(bin) => bin,
            Err(e) => return backend_unreachable("PostgreSQL's binaries", INSTALLED, &e),
        };
        let primary = tokio::task::spawn_blocking(move || PrivatePostgres::init(bin))
            .await
            .expect("the primary starts");
        let source = primary.port;
        let bin = primary.bin.clone();
        let standby = tokio::task::spawn_blocking(move || PrivatePostgres::standby_of(bin, source))
            .await
            .expect("the standby starts");
        Some(Self { primary, standby })
    }

    /// `postgres://postgres@127.0.0.1:{standby},127.0.0.1:{primary}/postgres`:
    /// the standby first, so a store that uses it shows it followed the
    /// writable one.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres",
            self.standby.port, self.primary.port
        )
    }

    /// Waits until the standby has replayed everything the primary wrote
    /// so far.
    pub async fn until_caught_up(&self) {
        let mut primary = self.primary.connect().await;
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .expect("the primary's WAL position");
        let mut standby = self.standby.connect().await;
        let replayed = async {
            loop {
                let replayed: bool =
                    sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                        .bind(&lsn)
                        .fetch_one(&mut standby)
                        .await
                        .expect("the standby's replay position");
                if replayed {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(READY_WITHIN, replayed)
            .await
            .expect("the standby never caught up");
    }

    /// Promotes the standby to primary (what Patroni or repmgr does after
    /// the primary is lost) and waits until it accepts writes.
    pub async fn promote(&self) {
        let mut standby = self.standby.connect().await;
        let promoted: bool = sqlx::query_scalar("SELECT pg_promote(true, 60)")
            .fetch_one(&mut standby)
            .await
            .expect("pg_promote");
        assert!(promoted, "the standby was not promoted");
    }
}

impl PrivatePostgres {
    /// A new cluster, started.
    fn init(bin: PathBuf) -> Self {
        let server = Self::new(bin, "vdi-pg-primary");
        as_server_owner(&server.bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(server.data())
            .run("initdb");
        server.started()
    }

    /// A standby of the server on `source`, from a base backup, started.
    fn standby_of(bin: PathBuf, source: u16) -> Self {
        let server = Self::new(bin, "vdi-pg-standby");
        as_server_owner(&server.bin.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-p",
            ])
            .arg(source.to_string())
            .arg("-D")
            .arg(server.data())
            .run("pg_basebackup");
        server.started()
    }

    fn new(bin: PathBuf, kind: &str) -> Self {
        let dir = private_dir(kind);
        if running_as_root() {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .run("chown");
        }
        Self {
            bin,
            dir,
            port: 0,
            running: false,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the server on a free port (another, if a process took the
    /// one chosen) and waits until it accepts connections.
    fn started(mut self) -> Self {
        for _ in 0..5 {
            self.port = free_port();
            let started = as_server_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
                     -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on",
                    self.port,
                    self.dir.display()
                ))
                .arg("start")
                .status()
                .expect("pg_ctl runs");
            if started.success() {
                self.running = true;
                return self;
            }
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        panic!("PostgreSQL would not start:\n{log}");
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, as the store names the server it writes to.
    pub fn name(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A connection to the `postgres` database as `postgres`.
    pub async fn connect(&self) -> PgConnection {
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
    }

    /// Kills the server as a crash does: SIGKILL to the postmaster and
    /// every process it started, at once.
    pub fn kill(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let Ok(pid_file) = std::fs::read_to_string(self.data().join("postmaster.pid")) else {
            return;
        };
        let Some(postmaster) = pid_file.lines().next().map(str::trim).map(str::to_owned) else {
            return;
        };
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        let mut kill = Command::new("kill");
        kill.arg("-KILL")
            .arg(&postmaster)
            .args(children.split_whitespace());
        let _ = kill.stderr(Stdio::null()).status();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed version's binary directory.
fn server_binaries() -> std::io::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(INSTALLED)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| std::io::Error::other("no version with initdb installed"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// `program`, run as the `postgres` user when this process is root.
fn as_server_owner(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Running a set-up step that must succeed.
trait Run {
    fn run(&mut self, what: &str);
}

impl Run for Command {
    fn run(&mut self, what: &str) {
        let out = self.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
