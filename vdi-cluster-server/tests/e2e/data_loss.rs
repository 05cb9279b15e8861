//! The backend loses its data: a private `redis-server` (no persistence)
//! is killed and started again empty on the same port while the workers
//! keep running their sessions. Their next heartbeats re-register them and
//! their sessions are adopted, so every returning student gets the same
//! worker and desktop, and nothing is started twice. The shared Redis is
//! never touched; a missing `redis-server` binary is a SKIP, or a failure
//! with `VDI_REQUIRE_BACKENDS=1`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vdi_cluster_core::testkit::backend_unreachable;

use crate::common::{Cluster, CpOptions, eventually, free_port};

const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A private, memory-only Redis server on a free port; killed on drop.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    fn start() -> Option<Self> {
        if let Err(e) = std::fs::metadata(REDIS_SERVER) {
            return backend_unreachable("redis-server", REDIS_SERVER, &e);
        }
        let dir = std::env::temp_dir().join(format!("vdi-e2e-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("data directory");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
        };
        // Another process may take the free port first: try another one.
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server would not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..200 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL, then a new empty server on the same port: the data is gone.
    fn restart_empty(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server came back on {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_empty_sessions_are_adopted_and_students_return_to_their_worker() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let options = CpOptions {
        store: Some(redis.url()),
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[4, 4, 4], options).await;
    let api = cluster.api.clone();
    let mut placed = Vec::new();
    for i in 0..6 {
        placed.push(
            api.allocate(&format!("exam-{}", i % 2), &format!("s{i}"))
                .await,
        );
    }

    redis.restart_empty();

    // The records are rebuilt from the workers' reports.
    for s in &placed {
        let (exam, user) = (s["examId"].as_str().unwrap(), s["userId"].as_str().unwrap());
        let found = eventually(&format!("{exam}/{user} adopted"), || async {
            let (status, body) = api.session(exam, user).await;
            (status == 200).then_some(body)
        })
        .await;
        assert_eq!(found["workerCode"], s["workerCode"], "{found}");
        assert_eq!(found["state"], "active", "{found}");
    }
    // A returning student gets the same worker and desktop.
    for s in &placed {
        let (exam, user) = (s["examId"].as_str().unwrap(), s["userId"].as_str().unwrap());
        let again = api.allocate(exam, user).await;
        assert_eq!(again["workerCode"], s["workerCode"], "{again}");
        assert_eq!(again["outcome"], "existing", "{again}");
    }
    // Nothing was started twice: workers and control plane agree.
    eventually("workers and control plane to agree", || async {
        let mut total = 0;
        for w in &cluster.workers {
            let own = w.session_keys().await;
            if Some(&own) != api.listed_worker_session_keys(&w.code).await.as_ref() {
                return None;
            }
            total += own.len();
        }
        (total == placed.len()).then_some(())
    })
    .await;
    let report = api.reconcile().await;
    assert_eq!(report["drift"], serde_json::json!([]), "{report}");
    drop(cluster);
    drop(redis);
}
