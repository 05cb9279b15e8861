//! Workers that die or go silent: SIGKILL one (routed around after its TTL,
//! its sessions moved after the hard timeout, back with a new boot id), and
//! SIGSTOP a majority (the mass-failure guard moves nothing).

use std::collections::BTreeMap;

use rustix::process::Signal;
use serde_json::{Value, json};

use crate::common::{Cluster, CpOptions, Events, by_worker, eventually, wait_worker};
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_routed_around_its_sessions_move_and_it_rejoins() {
    // Room for everything even without the victim: 12 sessions, then 4 more.
    let mut cluster = Cluster::start(&[10, 10, 10], CpOptions::default()).await;
    let api = cluster.api.clone();
    let mut placed = Vec::new();
    for i in 0..12 {
        placed.push(
            api.allocate(&format!("exam-{}", i % 2), &format!("s{i}"))
                .await,
        );
    }
    let placement = by_worker(&placed);
    let (victim, victim_sessions) = placement
        .iter()
        .max_by_key(|(_, keys)| keys.len())
        .map(|(w, keys)| (w.clone(), keys.clone()))
        .unwrap();
    assert!(victim_sessions.len() >= 2, "{placement:?}");
    let old_boot = api.worker(&victim).await["bootId"].clone();
    let others_max: u64 = 20;

    cluster.worker_mut(&victim).proc.kill();

    // Once its TTL passes it is unreachable and its slots leave the totals.
    wait_worker(&api, &victim, "availability", json!("unreachable")).await;
    let summary = api.summary().await;
    assert_eq!(summary["totalMaxSessions"], others_max, "{summary}");
    assert_eq!(summary["unreachableWorkers"], 1, "{summary}");

    // A student of it who comes back is re-dispatched at once.
    let (exam, user) = split(&victim_sessions[0]);
    let again = api.allocate(exam, user).await;
    assert_eq!(again["outcome"], "redispatched", "{again}");
    assert_eq!(again["redispatchedFrom"], victim.as_str());
    assert_ne!(again["workerCode"], victim.as_str());
    let target = cluster.worker(again["workerCode"].as_str().unwrap());
    assert!(target.session_keys().await.contains(&victim_sessions[0]));

    // New allocations never land on it.
    for i in 0..4 {
        let s = api.allocate("exam-new", &format!("n{i}")).await;
        assert_ne!(s["workerCode"], victim.as_str(), "{s}");
    }

    // After the hard timeout and a reconcile pass it is offline and its
    // remaining sessions are re-dispatched (automatic policy).
    wait_worker(&api, &victim, "availability", json!("offline")).await;
    eventually("the victim's sessions to move", || async {
        api.worker_session_keys(&victim)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    for key in &victim_sessions {
        let (exam, user) = split(key);
        let (status, s) = api.session(exam, user).await;
        assert_eq!(status, 200, "{key}: {s}");
        let holder = s["workerCode"].as_str().unwrap();
        assert_ne!(holder, victim);
        assert!(
            cluster.worker(holder).session_keys().await.contains(key),
            "{holder} runs {key}"
        );
    }

    // Restarted, it rejoins with a new boot id and takes work again.
    cluster.worker_mut(&victim).restart().await;
    let back = eventually("the victim back with a new boot id", || async {
        let w = api.worker(&victim).await;
        (w["availability"] == "healthy" && w["bootId"] != old_boot && w["isSchedulable"] == true)
            .then_some(w)
    })
    .await;
    assert_eq!(back["dispatchedSessions"], 0);
    let mut landed = false;
    for i in 0..10 {
        let s = api.allocate("exam-after", &format!("a{i}")).await;
        landed |= s["workerCode"] == victim.as_str();
    }
    assert!(landed, "the restarted worker took none of 10 new sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silencing_a_majority_moves_nothing_and_they_recover() {
    silence_a_majority(CpOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silencing_a_majority_moves_nothing_on_redis() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    silence_a_majority(redis.options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silencing_a_majority_moves_nothing_on_postgres() {
    let Some(db) = PgDatabase::new().await else {
        return;
    };
    silence_a_majority(db.options()).await;
}

/// The guard on, and students reloading meanwhile: every desktop stays
/// where it is.
async fn silence_a_majority(options: CpOptions) {
    let cluster = Cluster::start(&[6, 6, 6], options).await;
    let api = cluster.api.clone();
    let mut placed = Vec::new();
    for i in 0..12 {
        placed.push(
            api.allocate(&format!("exam-{}", i % 3), &format!("s{i}"))
                .await,
        );
    }
    let before: BTreeMap<String, Vec<String>> = by_worker(&placed);
    let mut own_before = BTreeMap::new();
    for w in &cluster.workers {
        own_before.insert(w.code.clone(), w.session_keys().await);
    }
    // Stop the two workers holding most sessions.
    let mut holders: Vec<(&String, &Vec<String>)> = before.iter().collect();
    holders.sort_by_key(|(_, keys)| std::cmp::Reverse(keys.len()));
    let stopped: Vec<String> = holders.iter().take(2).map(|(w, _)| (*w).clone()).collect();
    assert_eq!(stopped.len(), 2, "{before:?}");

    let events = Events::subscribe(&api).await;
    for code in &stopped {
        cluster.worker(code).proc.signal(Signal::STOP);
    }

    // Both go silent past the hard timeout; a reconcile pass finds their
    // sessions and leaves them in place, saying why.
    for code in &stopped {
        wait_worker(&api, code, "availability", json!("offline")).await;
    }
    let suspended = events.wait("migrationSuspended", |_| true).await;
    let reason = suspended["reason"].as_str().unwrap();
    assert!(reason.contains("2 of 3"), "{reason}");
    let report = events
        .wait("reconciled", |e| {
            let r = &e["report"];
            r["massFailureGuard"] == true && r["failedWorkerSessions"].as_u64() > Some(0)
        })
        .await;
    assert_eq!(report["report"]["migrated"], 0, "{report}");
    assert!(events.all("sessionMigrated").is_empty());
    let by_hand = api.reconcile().await;
    assert_eq!(by_hand["massFailureGuard"], true, "{by_hand}");
    assert_eq!(by_hand["migrated"], 0);

    // Students of the silent workers reload: the guard keeps their
    // desktops, handed back with a warning, not replaced.
    for s in placed
        .iter()
        .filter(|s| stopped.iter().any(|code| s["workerCode"] == code.as_str()))
    {
        let again = api
            .allocate(s["examId"].as_str().unwrap(), s["userId"].as_str().unwrap())
            .await;
        assert_eq!(again["dispatchId"], s["dispatchId"], "{again}");
        assert_eq!(again["workerCode"], s["workerCode"], "{again}");
        assert!(again["warning"].is_string(), "{again}");
    }

    for code in &stopped {
        cluster.worker(code).proc.signal(Signal::CONT);
    }
    for code in &stopped {
        wait_worker(&api, code, "availability", json!("healthy")).await;
    }

    // No session was lost or moved.
    for (code, keys) in &before {
        assert_eq!(&api.worker_session_keys(code).await, keys, "{code}");
        assert_eq!(&cluster.worker(code).session_keys().await, keys, "{code}");
    }
    for w in &cluster.workers {
        assert_eq!(w.session_keys().await, own_before[&w.code], "{}", w.code);
    }
    for s in &placed {
        let (status, now) = api
            .session(s["examId"].as_str().unwrap(), s["userId"].as_str().unwrap())
            .await;
        assert_eq!(status, 200);
        assert_eq!(now["dispatchId"], s["dispatchId"], "{now}");
    }
    assert!(events.all("sessionMigrated").is_empty());
    let healthy: Value = api.summary().await["healthyWorkers"].clone();
    assert_eq!(healthy, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_superseded_during_a_partition_is_stopped_when_its_worker_returns() {
    let cluster = Cluster::start(&[4, 4, 4], CpOptions::default()).await;
    let api = cluster.api.clone();
    let first = api.allocate("exam-z", "zoe").await;
    let old = first["workerCode"].as_str().unwrap().to_owned();
    let worker = cluster.worker(&old);

    // The worker is cut off; the student comes back and is placed elsewhere.
    worker.proc.signal(Signal::STOP);
    wait_worker(&api, &old, "availability", json!("unreachable")).await;
    let moved = api.allocate("exam-z", "zoe").await;
    assert_eq!(moved["outcome"], "redispatched", "{moved}");
    let new = moved["workerCode"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    // Back, it reports the session; the answer tells it to stop it.
    worker.proc.signal(Signal::CONT);
    eventually("the superseded session to stop", || async {
        worker.session_keys().await.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        cluster.worker(&new).session_keys().await,
        vec!["exam-z/zoe".to_owned()]
    );
    let (status, now) = api.session("exam-z", "zoe").await;
    assert_eq!(status, 200);
    assert_eq!(now["workerCode"], new.as_str());
    assert_eq!(now["dispatchId"], moved["dispatchId"]);
}
