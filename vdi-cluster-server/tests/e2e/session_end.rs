//! Each student's own end with real processes: a student given N seconds
//! more keeps the desktop past the exam's end and is then released; the
//! others are released at the end plus the grace.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::{format_rfc3339, parse_rfc3339};

use crate::common::{Cluster, CpOptions, Events, eventually};

const EXTRA_SEC: u64 = 8;
const GRACE_SEC: u64 = 1;

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn expired_at(events: &Events, user: &str) -> Option<u64> {
    events
        .all("sessionExpired")
        .iter()
        .find(|e| e["session"]["userId"] == user)
        .and_then(|e| e["at"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_student_outlives_the_exam_and_is_then_released() {
    let options = CpOptions {
        extra: vec!["--session-grace-sec".into(), GRACE_SEC.to_string()],
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[4], options).await;
    let api = &cluster.api;
    let events = Events::subscribe(api).await;
    // An exam under way that ends in a few seconds.
    let ends = Timestamp::from_millis(now_ms() + 6_000);
    let exam = json!({
        "examId": "short", "name": "Short", "students": 3,
        "startsAt": format_rfc3339(Timestamp::from_millis(now_ms() - 600_000)),
        "endsAt": format_rfc3339(ends),
    });
    let (status, body) = api.admin(Method::POST, "/api/vdi/exams", Some(exam)).await;
    assert_eq!(status, 201, "{body}");
    for user in ["s1", "s2", "s3"] {
        api.allocate("short", user).await;
    }
    // A proctor gives s2 EXTRA_SEC seconds more.
    let (status, end) = api
        .admin(
            Method::PATCH,
            "/api/vdi/sessions/short/s2",
            Some(json!({"extendSec": EXTRA_SEC, "reason": "incident on the desktop"})),
        )
        .await;
    assert_eq!(status, 200, "{end}");
    let own_end = parse_rfc3339("endsAt", end["endsAt"].as_str().unwrap()).unwrap();
    assert_eq!(own_end, ends.plus(Duration::from_secs(EXTRA_SEC)), "{end}");
    let (_, session) = api.session("short", "s2").await;
    assert_eq!(session["endsAt"], end["endsAt"], "{session}");

    // The others are warned, then released at the end plus the grace.
    for user in ["s1", "s3"] {
        events
            .wait("sessionExpiring", |e| e["session"]["userId"] == user)
            .await;
        let e = events
            .wait("sessionExpired", |e| e["session"]["userId"] == user)
            .await;
        assert_eq!(e["worker"], "w1", "{e}");
        assert!(
            e["at"].as_u64().unwrap() >= ends.as_millis() + GRACE_SEC * 1000,
            "{e}"
        );
    }
    // s2 is released after them, at its own end plus the grace.
    let e = events
        .wait("sessionExpired", |e| e["session"]["userId"] == "s2")
        .await;
    let s2_at = e["at"].as_u64().unwrap();
    assert!(s2_at >= own_end.as_millis() + GRACE_SEC * 1000, "{e}");
    for user in ["s1", "s3"] {
        assert!(
            expired_at(&events, user).unwrap() <= s2_at,
            "{user} released after s2"
        );
    }
    // Nothing is left on the worker, and each desktop was released once.
    let left: Vec<String> = eventually("the worker's sessions released", || async {
        let keys = api.worker_session_keys("w1").await;
        keys.is_empty().then_some(keys)
    })
    .await;
    assert!(left.is_empty());
    let (status, gone) = api.session("short", "s2").await;
    assert_eq!(status, 404, "{gone}");
    for user in ["s1", "s2", "s3"] {
        let n = events
            .all("sessionExpired")
            .iter()
            .filter(|e| e["session"]["userId"] == user)
            .count();
        assert_eq!(n, 1, "{user} released once");
    }
    let audit: Value = api.get("/api/vdi/audit").await;
    assert!(
        audit.to_string().contains("incident on the desktop"),
        "{audit}"
    );
}
