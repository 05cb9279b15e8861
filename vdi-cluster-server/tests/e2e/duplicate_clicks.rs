//! A student clicks "start" twenty times for the cluster's last free slot,
//! the clicks split over two `serve` replicas sharing Redis or PostgreSQL:
//! one click answers 201 and the other nineteen 200, every one naming the
//! same dispatch on the same worker; none answers 503 while the student
//! is being given (or holds) the slot. The race is repeated: each trial is
//! a new student, released before the next.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, wait_worker};
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

const TRIALS: usize = 12;
const CLICKS: usize = 20;
const EXAM: &str = "exam-clicks";

/// What one trial's clicks came to, or why it went wrong.
fn judge(answers: &[(StatusCode, Value)]) -> Result<(), String> {
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let other: Vec<String> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED && *s != StatusCode::OK)
        .map(|(s, b)| format!("{s} {b}"))
        .collect();
    if !other.is_empty() {
        return Err(format!("{} answered: {}", other.len(), other.join("; ")));
    }
    let mut named: Vec<(&Value, &Value)> = answers
        .iter()
        .map(|(_, b)| (&b["dispatchId"], &b["workerCode"]))
        .collect();
    named.dedup();
    if created != 1 || named.len() != 1 {
        return Err(format!(
            "{created} answered 201; dispatches named: {named:?}"
        ));
    }
    Ok(())
}

async fn duplicate_clicks(store: CpOptions) {
    let first = ControlPlane::start(store.clone()).await;
    let second = ControlPlane::start(store).await;
    let replicas = [Api::new(&first.url), Api::new(&second.url)];
    let both = format!("{},{}", first.api_base(), second.api_base());
    let options = WorkerOptions {
        slots: 2,
        ..WorkerOptions::default()
    };
    let worker = Worker::start("w-last", &both, options).await;
    for api in &replicas {
        wait_worker(api, "w-last", "isSchedulable", json!(true)).await;
    }
    // Another student holds the first slot: every trial is for the last.
    replicas[0].allocate(EXAM, "holder").await;

    let mut wrong = Vec::new();
    for trial in 0..TRIALS {
        let user = format!("student-{trial}");
        let start = Arc::new(Barrier::new(CLICKS));
        let mut clicks = Vec::new();
        for n in 0..CLICKS {
            let (api, user, start) = (replicas[n % 2].clone(), user.clone(), Arc::clone(&start));
            clicks.push(tokio::spawn(async move {
                start.wait().await;
                api.try_allocate(EXAM, &user).await.unwrap()
            }));
        }
        let mut answers = Vec::new();
        for c in clicks {
            answers.push(c.await.unwrap());
        }
        if let Err(why) = judge(&answers) {
            wrong.push(format!("trial {trial}: {why}"));
        }
        replicas[trial % 2].release(EXAM, &user).await;
    }
    assert!(
        wrong.is_empty(),
        "{} of {TRIALS} trials went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(worker.session_keys().await, vec![format!("{EXAM}/holder")]);
    let report = replicas[1].reconcile().await;
    assert_eq!(report["drift"], json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_clicks_on_two_replicas_share_the_last_slot_on_redis() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    duplicate_clicks(redis.options()).await;
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_clicks_on_two_replicas_share_the_last_slot_on_postgres() {
    let Some(db) = PgDatabase::new().await else {
        return;
    };
    duplicate_clicks(db.options()).await;
    drop(db);
}
