//! The replica holding the background lease is SIGKILLed in the middle of
//! a surge on a full cluster (120 students, 60 slots), on Redis and on
//! PostgreSQL. The sessions its dying requests had started on workers are
//! adopted by the survivor; in the end every slot is held by a session the
//! control plane knows, and every student whose desktop runs is answered
//! 200 with it.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, eventually};
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

const WORKERS: usize = 6;
const SLOTS: u32 = 10;
const STUDENTS: usize = 120;

/// One student as the exam application drives it: ask `first`, and after a
/// transport error (its replica died) `second`; wait while the allocation
/// is in progress. The session on 200/201, `None` on 503 (no room).
async fn student(first: Api, second: Api, exam: String, user: String) -> Option<Value> {
    let mut api = &first;
    for _ in 0..600 {
        match api.try_allocate(&exam, &user).await {
            Ok((status, body)) if status == StatusCode::OK || status == StatusCode::CREATED => {
                return Some(body);
            }
            Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => return None,
            Ok(_) => {}
            Err(_) => api = &second,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{exam}/{user} never answered");
}

/// `worker code → its own session keys` and the same through `api`.
async fn fleet_and_records(
    workers: &[Worker],
    api: &Api,
) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
    let (mut own, mut recorded) = (BTreeMap::new(), BTreeMap::new());
    for w in workers {
        own.insert(w.code.clone(), w.session_keys().await);
        recorded.insert(w.code.clone(), api.worker_session_keys(&w.code).await);
    }
    (own, recorded)
}

async fn surge_across_a_replica_kill(store: CpOptions) {
    let extra = |id: &str| {
        let mut options = store.clone();
        options
            .extra
            .extend(["--replica-id", id, "--adoption-grace-sec", "3"].map(str::to_owned));
        options
    };
    let mut leader = ControlPlane::start(extra("replica-a")).await;
    // Only the lease holder runs reconcile passes.
    leader.proc.wait_log("holding the background lease").await;
    let survivor = ControlPlane::start(extra("replica-b")).await;
    let (to_leader, to_survivor) = (Api::new(&leader.url), Api::new(&survivor.url));

    // Workers try the leader first and fail over to the survivor.
    let both = format!("{},{}", leader.api_base(), survivor.api_base());
    let mut workers = Vec::new();
    for i in 1..=WORKERS {
        let options = WorkerOptions {
            slots: SLOTS,
            ..WorkerOptions::default()
        };
        workers.push(Worker::start(&format!("w{i}"), &both, options).await);
    }
    eventually("every worker schedulable", || async {
        let s = to_survivor.summary().await;
        (s["schedulableWorkers"] == WORKERS as u64).then_some(())
    })
    .await;

    // The surge, half through each replica; the leader dies 150 ms in.
    let mut tasks = Vec::new();
    for i in 0..STUDENTS {
        let (first, second) = if i % 2 == 0 {
            (to_leader.clone(), to_survivor.clone())
        } else {
            (to_survivor.clone(), to_survivor.clone())
        };
        let (exam, user) = (format!("exam-{}", i % 4), format!("s{i:03}"));
        tasks.push(tokio::spawn(student(first, second, exam, user)));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    leader.proc.kill();
    let mut answered = BTreeMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if let Some(s) = t.await.unwrap() {
            answered.insert(format!("exam-{}/s{i:03}", i % 4), s);
        }
    }

    // The survivor adopts what the dead requests started: every session a
    // worker runs is recorded on it, and nothing else is.
    eventually("every running session recorded", || async {
        let (own, recorded) = fleet_and_records(&workers, &to_survivor).await;
        (own == recorded).then_some(())
    })
    .await;

    // Students turned away during the surge ask again until the cluster
    // is full: slots held while their sessions were uncertain come free
    // with the workers' next reports, and every one is usable.
    let full = WORKERS * SLOTS as usize;
    let mut rounds = 0;
    let (own, recorded) = loop {
        let (own, recorded) = fleet_and_records(&workers, &to_survivor).await;
        let total: usize = own.values().map(Vec::len).sum();
        if own == recorded && total == full {
            break (own, recorded);
        }
        rounds += 1;
        assert!(
            rounds < 300,
            "{total} of {full} running: {own:?}\nrecorded: {recorded:?}\n{}",
            to_survivor.summary().await
        );
        for i in 0..STUDENTS {
            let key = format!("exam-{}/s{i:03}", i % 4);
            if answered.contains_key(&key) {
                continue;
            }
            let (exam, user) = (format!("exam-{}", i % 4), format!("s{i:03}"));
            if let Some(s) = student(to_survivor.clone(), to_survivor.clone(), exam, user).await {
                answered.insert(key, s);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(own, recorded);

    // Every student whose desktop runs gets it: 200, on that worker; those
    // answered earlier got that same session.
    for (code, keys) in &own {
        for key in keys {
            let (exam, user) = key.split_once('/').unwrap();
            let (status, body) = to_survivor.try_allocate(exam, user).await.unwrap();
            assert_eq!(status, StatusCode::OK, "{key}: {body}");
            assert_eq!(body["workerCode"], code.as_str(), "{key}: {body}");
            if let Some(earlier) = answered.get(key) {
                assert_eq!(earlier["workerCode"], body["workerCode"], "{key}");
            }
        }
    }
    let report = to_survivor.reconcile().await;
    assert_eq!(report["drift"], serde_json::json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_surge_strands_nobody_on_redis() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    surge_across_a_replica_kill(redis.options()).await;
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_surge_strands_nobody_on_postgres() {
    let Some(db) = PgDatabase::new().await else {
        return;
    };
    surge_across_a_replica_kill(db.options()).await;
    drop(db);
}
