//! The waiting room end to end: a booked exam on two workers of three
//! slots, a surge of twice the capacity — half placed, half queued with
//! positions 1..N — then releases that promote strictly in order, until
//! everyone is placed and the control plane's records agree with the
//! workers' own counts. Run on Redis and PostgreSQL; `surge(options)`
//! takes any backend's options.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, Cluster, CpOptions, eventually};
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

const SLOTS: [u32; 2] = [3, 3];
const CAPACITY: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_on_redis_queues_half_and_places_everyone_in_order() {
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    surge(prefix.options()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_on_postgres_queues_half_and_places_everyone_in_order() {
    let Some(db) = PgDatabase::new().await else {
        return;
    };
    surge(db.options()).await;
}

async fn surge(mut options: CpOptions) {
    // Nobody abandons while the test waits on others.
    options
        .extra
        .extend(["--queue-abandon-sec".to_owned(), "600".to_owned()]);
    let cluster = Cluster::start(&SLOTS, options).await;
    let api = &cluster.api;
    let (status, body) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({
                "examId": "surge",
                "name": "Surge",
                "startsAt": "2030-06-01T08:00:00Z",
                "endsAt": "2030-06-01T10:00:00Z",
                "students": 5,
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Twice the capacity click "start" at once.
    let calls = (0..2 * CAPACITY).map(|i| {
        let api = api.clone();
        async move {
            let user = format!("student-{i}");
            let (status, body) = api.try_allocate("surge", &user).await.unwrap();
            (user, status.as_u16(), body)
        }
    });
    let answers = futures::future::join_all(calls).await;
    // Seated: placed, or (paced starts) reserved with the desktop starting
    // after the answer.
    let starting = |a: &&(String, u16, Value)| a.1 == 202 && a.2["state"] == "starting";
    let placed: Vec<&(String, u16, Value)> = answers
        .iter()
        .filter(|a| a.1 == 201 || starting(a))
        .collect();
    for (user, _, _) in answers.iter().filter(starting) {
        api.until_started("surge", user).await;
    }
    let mut queued: Vec<(u64, String)> = answers
        .iter()
        .filter(|a| a.1 == 202 && !starting(a))
        .map(|(user, _, body)| {
            assert_eq!(body["state"], "queued", "{body}");
            (body["position"].as_u64().unwrap(), user.clone())
        })
        .collect();
    queued.sort();
    assert_eq!(placed.len(), CAPACITY, "{answers:?}");
    assert_eq!(
        queued.iter().map(|q| q.0).collect::<Vec<_>>(),
        (1..=CAPACITY as u64).collect::<Vec<_>>(),
        "{answers:?}"
    );
    let order: Vec<String> = queued.iter().map(|q| q.1.clone()).collect();
    assert_eq!(waiting(api).await, order, "the queue as operators see it");

    // Each release places the head, and only the head.
    for (i, (user, _, _)) in placed.iter().enumerate() {
        let released = api.release("surge", user).await;
        assert_eq!(released["released"], true, "{released}");
        let head = &order[i];
        // Placed, and out of the queue: the promoter completes its claim
        // on the head just after the session is visible.
        eventually(&format!("{head} placed after release {i}"), || async {
            let (status, body) = api.session("surge", head).await;
            let placed = status == 200 && body["state"] != "queued";
            (placed && !waiting(api).await.contains(head)).then_some(())
        })
        .await;
        for (behind, later) in order.iter().enumerate().skip(i + 1) {
            let (status, body) = api.session("surge", later).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["state"], "queued", "{later} overtook {head}: {body}");
            assert_eq!(body["position"], (behind - i) as u64, "{body}");
        }
    }
    // The last promotion completes its claim just after the session is
    // visible: the queue empties right after.
    eventually("the queue to empty", || async {
        waiting(api).await.is_empty().then_some(())
    })
    .await;

    // Everyone placed; the records agree with what the workers run.
    let own_total = eventually("records agree with the workers' counts", || async {
        let mut total = 0;
        for w in &cluster.workers {
            let own = w.status().await["activeSessions"].clone();
            let seen = api.worker(&w.code).await;
            if seen["activeSessions"] != own || seen["dispatchedSessions"] != own {
                return None;
            }
            if api.worker_session_keys(&w.code).await != w.session_keys().await {
                return None;
            }
            total += own.as_u64().unwrap();
        }
        Some(total)
    })
    .await;
    assert_eq!(own_total, CAPACITY as u64);
    let detail = api.get("/api/vdi/exams/surge").await;
    let figures = &detail["figures"];
    assert_eq!(figures["sessionsInUse"], CAPACITY as u64, "{detail}");
    assert_eq!(figures["queued"], 0, "{detail}");
    assert_eq!(figures["placedFromQueue"], CAPACITY as u64, "{detail}");
    for user in &order {
        let (status, body) = api.session("surge", user).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["workerCode"].is_string(), "{user} placed: {body}");
    }
}

/// Who waits in the exam's queue, head first.
async fn waiting(api: &Api) -> Vec<String> {
    let queue = api.get("/api/vdi/exams/surge/queue").await;
    queue["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["userId"].as_str().unwrap().to_owned())
        .collect()
}
