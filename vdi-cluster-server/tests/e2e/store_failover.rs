//! The store's primary dies in the middle of an exam start, on both
//! engines that fail over:
//! - Redis with Sentinel started by the test (a primary, a replica, three
//!   sentinels on loopback), used through a `redis+sentinel://` URL; the
//!   sentinels promote the replica;
//! - Redis Cluster started by the test (three primaries, a replica of
//!   each), used through a `redis+cluster://` URL; the primary of the
//!   store's slot is killed and the cluster promotes its replica;
//! - PostgreSQL with a hot standby started by the test, used through a
//!   host list (`postgres://standby,primary/…`); the test promotes the
//!   standby right after the crash, as Patroni or repmgr would.
//!
//! Two `serve` replicas share the store, and three workers heartbeat to
//! the first. While students click through both replicas, the primary is
//! killed (SIGKILL, with every process it started). The exam goes on:
//! - no `serve` is restarted, and both name the new primary in `/readyz`
//!   (Redis Cluster: `/readyz` names no node);
//! - every student is answered 200/201 in the end (a click during the
//!   switch answers 503 and the student clicks again);
//! - every student answered still holds a desktop, on the worker they were
//!   answered with or placed again once;
//! - no worker runs more sessions than its slots, and after one reconcile
//!   pass each worker's records are exactly what it runs (no slot held by
//!   nobody).
//!
//! The time during which clicks failed is printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use vdi_cluster_postgres::testkit::StandbyPair;
use vdi_cluster_redis::hash_tagged;
use vdi_cluster_redis::testkit::{RedisCluster, SentinelCluster};

use crate::common::{Api, Cluster, ControlPlane, CpOptions, eventually};

const SLOTS: [u32; 3] = [40, 40, 40];
const STUDENTS: usize = 90;
const EXAM: &str = "exam-failover";

/// What the students saw.
#[derive(Debug, Default)]
struct Clicks {
    /// The worker each student was answered with (first answer).
    answered: BTreeMap<String, String>,
    /// When clicks failed: first and last.
    failed: Vec<Instant>,
    /// Answers seen, for the kill's trigger.
    count: usize,
}

async fn student(api: Arc<Api>, user: String, clicks: Arc<Mutex<Clicks>>) {
    let placed = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            match api.try_allocate(EXAM, &user).await {
                Ok((status, body)) if status == 200 || status == 201 => {
                    let worker = body["workerCode"].as_str().unwrap_or_default().to_owned();
                    let mut clicks = clicks.lock().await;
                    clicks.answered.insert(user.clone(), worker);
                    clicks.count += 1;
                    return;
                }
                Ok((status, body)) => {
                    assert!(
                        status.is_server_error() || status == 429,
                        "{user}: {status} {body}"
                    );
                    clicks.lock().await.failed.push(Instant::now());
                }
                Err(_) => clicks.lock().await.failed.push(Instant::now()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(placed.is_ok(), "{user} was never placed");
}

/// A store deployment whose primary the test kills.
trait Deployment {
    /// `--store`.
    fn url(&self) -> String;
    /// `host:port` of the primary at first, and after the failover, as
    /// `/readyz` names them (`None`: it names none).
    fn primaries(&self) -> Option<(String, String)>;
    /// Kills the primary; the deployment promotes another server.
    async fn fail_over(&mut self);
    /// Waits until the deployment has settled on its new primary.
    async fn settled(&mut self);
}

impl Deployment for SentinelCluster {
    fn url(&self) -> String {
        SentinelCluster::url(self)
    }
    fn primaries(&self) -> Option<(String, String)> {
        Some((
            format!("127.0.0.1:{}", self.first.port()),
            format!("127.0.0.1:{}", self.second.port()),
        ))
    }
    async fn fail_over(&mut self) {
        self.kill_primary();
    }
    async fn settled(&mut self) {
        self.until_failed_over().await;
    }
}

impl Deployment for StandbyPair {
    fn url(&self) -> String {
        StandbyPair::url(self)
    }
    fn primaries(&self) -> Option<(String, String)> {
        Some((self.primary.name(), self.standby.name()))
    }
    async fn fail_over(&mut self) {
        self.primary.kill();
        self.promote().await;
    }
    async fn settled(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exam_start_rides_through_a_redis_failover() {
    let Some(store) = SentinelCluster::start().await else {
        return;
    };
    let prefix = format!("vdi-e2e-{}", uuid::Uuid::new_v4().simple());
    rides_through(store, Some(prefix)).await;
}

/// A Redis Cluster and the hash tag of the store's prefix on it.
struct ClusterDeployment {
    cluster: RedisCluster,
    tag: String,
}

impl Deployment for ClusterDeployment {
    fn url(&self) -> String {
        self.cluster.url()
    }
    fn primaries(&self) -> Option<(String, String)> {
        None
    }
    async fn fail_over(&mut self) {
        self.cluster.kill_primary_of(&self.tag).await;
    }
    async fn settled(&mut self) {
        self.cluster.until_settled().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exam_start_rides_through_a_redis_cluster_failover() {
    let Some(cluster) = RedisCluster::start().await else {
        return;
    };
    let prefix = format!("vdi-e2e-{}", uuid::Uuid::new_v4().simple());
    let tag = hash_tagged(&prefix);
    rides_through(ClusterDeployment { cluster, tag }, Some(prefix)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exam_start_rides_through_a_postgres_failover() {
    let Some(store) = StandbyPair::start().await else {
        return;
    };
    rides_through(store, None).await;
}

async fn rides_through(mut store: impl Deployment, redis_prefix: Option<String>) {
    let options = CpOptions {
        store: Some(store.url()),
        redis_prefix,
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&SLOTS, options.clone()).await;
    let second = ControlPlane::start(options).await;
    let replicas = [
        Arc::new(Api::new(&cluster.cp.url)),
        Arc::new(Api::new(&second.url)),
    ];
    let primaries = store.primaries();
    if let Some((first, _)) = &primaries {
        for api in &replicas {
            assert_eq!(api.get("/readyz").await["primary"], first.as_str());
        }
    }

    let clicks = Arc::new(Mutex::new(Clicks::default()));
    let mut students = Vec::new();
    for i in 0..STUDENTS {
        let api = Arc::clone(&replicas[i % 2]);
        students.push(tokio::spawn(student(
            api,
            format!("student-{i:03}"),
            Arc::clone(&clicks),
        )));
        if i == STUDENTS / 3 {
            // A third of the class has clicked: the primary dies.
            eventually("some students answered", || async {
                (clicks.lock().await.count > 0).then_some(())
            })
            .await;
            store.fail_over().await;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    for task in students {
        task.await.expect("a student's clicks");
    }
    store.settled().await;

    let clicks = std::mem::take(&mut *clicks.lock().await);
    assert_eq!(clicks.answered.len(), STUDENTS, "every student answered");
    if let (Some(first), Some(last)) = (clicks.failed.first(), clicks.failed.last()) {
        println!(
            "clicks failed for {:.1} s ({} failed clicks) during the failover",
            last.duration_since(*first).as_secs_f64(),
            clicks.failed.len()
        );
    }
    if let Some((_, promoted)) = &primaries {
        for api in &replicas {
            assert_eq!(api.get("/readyz").await["primary"], promoted.as_str());
        }
    }

    // Every student answered holds a desktop: where they were answered, or
    // placed again once (a reservation the old primary acknowledged but
    // never replicated comes back from the worker's heartbeat).
    let api = &replicas[0];
    for (user, worker) in &clicks.answered {
        let holder = eventually(&format!("{user} holds a desktop"), || async {
            let (status, body) = api.session(EXAM, user).await;
            (status == 200)
                .then(|| body["workerCode"].as_str().map(str::to_owned))
                .flatten()
        })
        .await;
        if !worker.is_empty() && holder != *worker {
            println!("{user} was answered with {worker} and holds a desktop on {holder}");
        }
    }

    // One reconcile pass: each worker's records are what it runs, and no
    // worker runs more than its slots.
    api.reconcile().await;
    for (worker, slots) in cluster.workers.iter().zip(SLOTS) {
        let runs = worker.session_keys().await;
        assert!(
            runs.len() <= slots as usize,
            "{} runs {} sessions on {slots} slots",
            worker.code,
            runs.len()
        );
        eventually(
            &format!("{}'s records match what it runs", worker.code),
            || async {
                let records = api.worker_session_keys(&worker.code).await;
                let runs = worker.session_keys().await;
                (records == runs).then_some(())
            },
        )
        .await;
    }
    let placed: usize = {
        let mut total = 0;
        for worker in &cluster.workers {
            total += worker.session_keys().await.len();
        }
        total
    };
    assert_eq!(placed, STUDENTS, "one desktop per student, none twice");
}

/// A reservation the old primary acknowledged but never replicated (its
/// replica stopped, SIGSTOP, and its replication link cut while the
/// student clicked) is lost by the
/// failover; the worker that runs the desktop reports it in its next
/// heartbeat and the control plane adopts it: the student's session is
/// back on that worker, and its records match what it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_the_failover_lost_comes_back_from_the_worker() {
    let Some(mut store) = SentinelCluster::start().await else {
        return;
    };
    let options = CpOptions {
        store: Some(store.url()),
        redis_prefix: Some(format!("vdi-e2e-{}", uuid::Uuid::new_v4().simple())),
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[4], options).await;
    let api = &cluster.api;

    // The replica stops, and its replication link is cut (the primary
    // drops it): nothing written from now on reaches it.
    store.second.pause();
    let mut primary = vdi_cluster_redis::redis::Client::open(store.first.url())
        .expect("the primary's URL")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to the primary");
    let _: i64 = vdi_cluster_redis::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut primary)
        .await
        .expect("CLIENT KILL TYPE replica");
    let placed = api.allocate(EXAM, "student-lost").await;
    let worker = placed["workerCode"].as_str().expect("a worker").to_owned();
    store.kill_primary();
    store.second.resume();
    store.settled().await;

    // The promoted replica never had the reservation: the worker's report
    // brings it back.
    cluster
        .cp
        .proc
        .wait_log("\"type\":\"sessionAdopted\"")
        .await;
    let holder = eventually("the student holds the desktop again", || async {
        let (status, body) = api.session(EXAM, "student-lost").await;
        (status == 200)
            .then(|| body["workerCode"].as_str().map(str::to_owned))
            .flatten()
    })
    .await;
    assert_eq!(holder, worker, "on the worker that runs the desktop");
    api.reconcile().await;
    let runs = cluster.workers[0].session_keys().await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(api.worker_session_keys(&worker).await, runs);
}
