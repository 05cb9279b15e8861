//! The whole fleet restarts with every slot taken (a power cut in the lab,
//! an image update that reboots every host): the workers come back with
//! new boot ids and no sessions, and their heartbeats free the slots of
//! what they no longer run. A worker that answers is never a failed
//! worker: nothing waits for the failure policy, the mass-failure guard or
//! a healthy target, and every returning student is placed. On the
//! in-memory store, Redis and PostgreSQL (an unreachable backend is a
//! SKIP, or a failure with `VDI_REQUIRE_BACKENDS=1`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{Cluster, CpOptions, Events, eventually};
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

const SLOTS: [u32; 3] = [4, 4, 4];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_restart_frees_every_slot_and_students_return() {
    fleet_restart(CpOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_restart_frees_every_slot_on_redis() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    fleet_restart(redis.options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_restart_frees_every_slot_on_postgres() {
    let Some(db) = PgDatabase::new().await else {
        return;
    };
    fleet_restart(db.options()).await;
}

async fn fleet_restart(options: CpOptions) {
    let mut cluster = Cluster::start(&SLOTS, options).await;
    let api = cluster.api.clone();
    let events = Events::subscribe(&api).await;
    let slots: u64 = SLOTS.iter().map(|&s| u64::from(s)).sum();

    // Every slot taken.
    let mut students = Vec::new();
    for i in 0..slots {
        let (exam, user) = (format!("exam-{}", i % 2), format!("s{i}"));
        api.allocate(&exam, &user).await;
        students.push((exam, user));
    }
    let (status, body) = api.try_allocate("exam-0", "late").await.unwrap();
    assert_eq!(status, 503, "the cluster is full: {body}");
    let mut boots = BTreeMap::new();
    for w in &cluster.workers {
        boots.insert(w.code.clone(), api.worker(&w.code).await["bootId"].clone());
    }

    // The power comes back: every worker is a new process, running nothing.
    for w in &mut cluster.workers {
        w.proc.kill();
    }
    for w in &mut cluster.workers {
        w.restart().await;
    }

    // Within a heartbeat and a pass (polled, with a bound): the free slots
    // are the fleet's slots less what the workers report running.
    let summary = eventually("the restarted fleet's slots back in the totals", || async {
        let mut running = 0;
        for w in &cluster.workers {
            let reported = api.worker(&w.code).await;
            if reported["bootId"] == boots[&w.code] || reported["availability"] != "healthy" {
                return None;
            }
            running += w.session_keys().await.len() as u64;
        }
        let s = api.summary().await;
        (s["totalAvailableSessions"] == slots - running && s["totalMaxSessions"] == slots)
            .then_some(s)
    })
    .await;
    assert_eq!(summary["totalActiveSessions"], 0, "{summary}");

    // Each lost session was announced, with the worker's two boots.
    eventually("a sessionLost event per session", || async {
        (events.all("sessionLost").len() as u64 == slots).then_some(())
    })
    .await;
    for e in events.all("sessionLost") {
        let worker = e["worker"].as_str().unwrap().to_owned();
        assert_eq!(e["oldBootId"], boots[&worker], "{e}");
        assert_ne!(e["newBootId"], boots[&worker], "{e}");
        assert!(e["session"]["examId"].is_string(), "{e}");
    }

    // Nothing is left for the failure policy: the workers answered.
    let report = api.reconcile().await;
    assert_eq!(report["failedWorkerSessions"], 0, "{report}");
    assert_eq!(report["leftInPlace"], 0, "{report}");
    assert_eq!(report["massFailureGuard"], false, "{report}");
    assert_eq!(report["drift"], serde_json::json!([]), "{report}");

    // Every returning student keeps the key and gets a desktop that runs.
    for (exam, user) in &students {
        let placed: Value = api.allocate(exam, user).await;
        let holder = placed["workerCode"].as_str().unwrap();
        let key = format!("{exam}/{user}");
        assert!(
            cluster.worker(holder).session_keys().await.contains(&key),
            "{holder} runs {key}"
        );
    }
    let full = api.summary().await;
    assert_eq!(full["totalAvailableSessions"], 0, "{full}");
}
