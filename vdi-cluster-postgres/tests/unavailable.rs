//! While PostgreSQL cannot be reached every call fails with
//! `Error::Unavailable` within the configured bounds (never a hang or a
//! panic), and the same store works again once the server is back.
//!
//! No test asserts how fast: a generous outer timeout only turns a hang
//! into a failure.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::{Connection, Executor};
use vdi_cluster_core::store::{
    AuditEntry, AuditLog, DispatchStore, LeaderLease, Lease, Registry, Reservation,
};
use vdi_cluster_core::{DispatchId, Error, Result, Timestamp};
use vdi_cluster_postgres::{PgStore, PgStoreConfig};

use common::{TestDb, register};
use vdi_cluster_core::testkit::{assert_no_drift, key, request, wid, worker_record};

/// Turns a hang into a test failure.
const HANG: Duration = Duration::from_secs(120);

fn quick() -> PgStoreConfig {
    PgStoreConfig::default()
        .acquire_timeout(Duration::from_secs(1))
        .statement_timeout(Duration::from_secs(1))
}

async fn bounded<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T>) {
    match result {
        Err(Error::Unavailable { source }) => {
            assert!(!source.to_string().is_empty(), "{what}: empty source");
        }
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

/// Every trait method fails with `Unavailable`.
async fn every_call_is_unavailable(store: &PgStore) {
    let w = wid("w-1");
    let k = key("exam", "user");
    let id = DispatchId::new();
    assert_unavailable("ping", bounded("ping", store.ping()).await);
    assert_unavailable("worker", bounded("worker", store.worker(&w)).await);
    assert_unavailable("workers", bounded("workers", store.workers()).await);
    let record = worker_record("w-1", 2, 0);
    assert_unavailable(
        "put_worker",
        bounded("put_worker", store.put_worker(&record, None)).await,
    );
    assert_unavailable(
        "put_worker_if_dispatched",
        bounded(
            "put_worker_if_dispatched",
            store.put_worker_if_dispatched(&record, 1, 0),
        )
        .await,
    );
    assert_unavailable(
        "delete_worker",
        bounded("delete_worker", store.delete_worker(&w, 1)).await,
    );
    assert_unavailable(
        "reserve",
        bounded("reserve", store.reserve(&request(&k, &w, Timestamp(1)))).await,
    );
    assert_unavailable(
        "confirm",
        bounded(
            "confirm",
            store.confirm(&k, id, None, Timestamp(1), Duration::from_secs(1), None),
        )
        .await,
    );
    assert_unavailable(
        "undo",
        bounded("undo", store.undo(&k, id, None, None, None)).await,
    );
    assert_unavailable(
        "release",
        bounded("release", store.release(&k, None, None, None)).await,
    );
    assert_unavailable(
        "mark_orphaned",
        bounded("mark_orphaned", store.mark_orphaned(&k, id, None)).await,
    );
    assert_unavailable("dispatch", bounded("dispatch", store.dispatch(&k)).await);
    assert_unavailable(
        "worker_dispatches",
        bounded("worker_dispatches", store.worker_dispatches(&w, 5)).await,
    );
    assert_unavailable(
        "scan_dispatches",
        bounded("scan_dispatches", store.scan_dispatches(None, 5)).await,
    );
    assert_unavailable(
        "placement",
        bounded("placement", store.placement(&k.exam_id, Timestamp(1))).await,
    );
    assert_unavailable("recount", bounded("recount", store.recount(true)).await);
    assert_unavailable(
        "try_acquire",
        bounded(
            "try_acquire",
            store.try_acquire("l", "me", Duration::from_secs(1)),
        )
        .await,
    );
    let lease = Lease {
        name: "l".into(),
        holder: "me".into(),
        token: 1,
    };
    assert_unavailable(
        "release_lease",
        bounded("release_lease", store.release_lease(&lease)).await,
    );
    let entry = AuditEntry {
        at: Timestamp(1),
        actor: "a".into(),
        action: "b".into(),
        target: "c".into(),
        detail: serde_json::Value::Null,
    };
    assert_unavailable(
        "append_audit",
        bounded("append_audit", store.append_audit(&entry)).await,
    );
    assert_unavailable(
        "recent_audit",
        bounded("recent_audit", store.recent_audit(5)).await,
    );
    assert_unavailable("migrate", bounded("migrate", store.migrate()).await);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn nothing_listening_is_unavailable() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port());
    assert_unavailable(
        "connect",
        bounded("connect", PgStore::connect_with(&url, quick())).await,
    );
    let store = PgStore::connect_lazy(&url, quick()).unwrap();
    every_call_is_unavailable(&store).await;
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable() {
    // Accepts TCP connections (the kernel does) but never speaks.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        listener.local_addr().unwrap().port()
    );
    let store = PgStore::connect_lazy(&url, quick()).unwrap();
    assert_unavailable("ping", bounded("ping", store.ping()).await);
    assert_unavailable(
        "reserve",
        bounded(
            "reserve",
            store.reserve(&request(&key("e", "u"), &wid("w"), Timestamp(1))),
        )
        .await,
    );
    drop(listener);
}

#[tokio::test]
async fn a_lock_held_elsewhere_times_out_as_unavailable() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store_with(common::test_config().statement_timeout(Duration::from_millis(200)));
    let record = worker_record("w-locked", 3, 0);
    register(&store, &record).await;
    // Another session holds the worker row and never lets go.
    let mut blocker = db.connection().await;
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("SELECT * FROM vdi.workers WHERE id = 'w-locked' FOR UPDATE")
        .await
        .unwrap();
    let k = key("exam", "u1");
    assert_unavailable(
        "reserve",
        bounded(
            "reserve",
            store.reserve(&request(&k, &record.id, Timestamp(1))),
        )
        .await,
    );
    blocker.execute("ROLLBACK").await.unwrap();
    let _ = blocker.close().await;
    // Nothing of the timed-out step remains; the store carries on.
    assert!(store.dispatch(&k).await.unwrap().is_none());
    assert!(matches!(
        store
            .reserve(&request(&k, &record.id, Timestamp(1)))
            .await
            .unwrap(),
        Reservation::Reserved { .. }
    ));
    assert_no_drift(&store).await;
    db.cleanup().await;
}

/// How to run one private PostgreSQL cluster.
#[derive(Debug, Clone)]
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn bin_dir() -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
            .collect();
        versions.sort();
        versions.pop()
    }

    /// Runs a server binary, as the `postgres` user when we are root
    /// (initdb refuses to run as root).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn init(&self) {
        let out = self.run(
            "initdb",
            &[
                "-D",
                &self.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self, mode: &str) {
        let out = self.run("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// A PostgreSQL server of this test's own, in a temporary directory on a
/// free loopback port. Stopped and removed on drop, also on panic.
struct PrivateServer(Cluster);

impl PrivateServer {
    /// Creates and starts the cluster (blocking: run it off the runtime).
    fn start() -> Option<Self> {
        let Some(bin) = Cluster::bin_dir() else {
            return vdi_cluster_core::testkit::backend_unreachable(
                "private PostgreSQL",
                "/usr/lib/postgresql/*/bin",
                &"initdb and pg_ctl not found",
            );
        };
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = std::env::temp_dir().join(format!("vdi-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        // From here on, drop cleans up.
        let server = Self(Cluster {
            bin,
            dir,
            port: closed_port(),
            as_postgres,
        });
        if as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(&server.0.dir)
                .status()
                .unwrap();
            assert!(chown.success(), "chown of {}", server.0.dir.display());
        }
        server.0.init();
        server.0.start();
        Some(server)
    }

    fn dir(&self) -> &Path {
        &self.0.dir
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if self.dir().join("data").join("postmaster.pid").exists() {
            let _ = self.0.run(
                "pg_ctl",
                &["-D", &self.0.data(), "-m", "immediate", "-w", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_survives_a_server_restart() {
    let Some(server) = tokio::task::spawn_blocking(PrivateServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let cluster = server.0.clone();
    let store = PgStore::connect_with(&cluster.url(), quick())
        .await
        .expect("connect to the private server");
    store.migrate().await.unwrap();
    let record = worker_record("w-restart", 4, 0);
    register(&store, &record).await;
    let before = key("exam", "before");
    assert!(matches!(
        store
            .reserve(&request(&before, &record.id, Timestamp(1)))
            .await
            .unwrap(),
        Reservation::Reserved { .. }
    ));

    // Down (fast shutdown: open connections are terminated).
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop("fast"))
        .await
        .unwrap();
    every_call_is_unavailable(&store).await;

    // Back up on the same port: the same store works again by itself.
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start())
        .await
        .unwrap();
    let mut attempts = 0;
    while let Err(e) = bounded("ping", store.ping()).await {
        attempts += 1;
        assert!(attempts < 100, "the store did not recover: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.dispatch(&before).await.unwrap().is_some());
    let after = key("exam", "after");
    assert!(matches!(
        store
            .reserve(&request(&after, &record.id, Timestamp(2)))
            .await
            .unwrap(),
        Reservation::Reserved { .. }
    ));
    assert_no_drift(&store).await;
    store.close().await;
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}
