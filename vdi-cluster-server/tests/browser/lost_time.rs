//! An incident from the kill to the release, with real processes: a
//! worker SIGKILLed mid-exam; its students, back on another worker, have
//! `workerLost` in their ledgers with `lostSec` within a second of the gap
//! the test measures; a proctor grants one of them that time on the exam's
//! page; the exam then ends, and that student's desktop outlives the end by
//! exactly the time granted before the leader releases it; the exam's CSV
//! export lists them. No console error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::{format_rfc3339, parse_rfc3339};
use vdi_cluster_server::auth::Role;

use crate::common::{Cluster, CpOptions, Events, admin_token, eventually, http, wait_worker};
use crate::harness::{Browser, token};

const GRACE_SEC: u64 = 1;
/// The exam's end, from when the grant is made.
const ENDS_IN: Duration = Duration::from_secs(3);

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn at(ms: u64) -> String {
    format_rfc3339(Timestamp::from_millis(ms))
}

fn ends_at(body: &Value) -> Timestamp {
    parse_rfc3339("endsAt", body["endsAt"].as_str().expect("endsAt")).unwrap()
}

fn expired(events: &Events, user: &str) -> Option<Value> {
    events
        .all("sessionExpired")
        .into_iter()
        .find(|e| e["session"]["userId"] == user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_student_gets_the_lost_time_back_on_the_page() {
    let Some(mut b) = Browser::start("lost-time", "en-US").await else {
        return;
    };
    let options = CpOptions {
        extra: vec!["--session-grace-sec".into(), GRACE_SEC.to_string()],
        ..CpOptions::default()
    };
    let mut cluster = Cluster::start(&[4, 4, 4], options).await;
    let api = cluster.api.clone();
    let url = cluster.cp.url.clone();
    let events = Events::subscribe(&api).await;
    // Under way; its end is brought forward once the time is granted.
    let (status, r) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({
                "examId": "hist", "name": "History", "students": 2,
                "startsAt": at(now_ms() - 600_000),
                "endsAt": at(now_ms() + 3_600_000),
            })),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let victim = api.allocate("hist", "s1").await["workerCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let s2_first = api.allocate("hist", "s2").await["workerCode"]
        .as_str()
        .unwrap()
        .to_owned();
    // The students on the victim: s1, and s2 if it went there too.
    let lost: Vec<&str> = if s2_first == victim {
        vec!["s1", "s2"]
    } else {
        vec!["s1"]
    };

    // Killed right after a heartbeat of it is seen: its last heartbeat is
    // between that sighting and the kill.
    let seen = api.worker(&victim).await["lastHeartbeatAt"].clone();
    eventually("a fresh heartbeat of the victim", || async {
        (api.worker(&victim).await["lastHeartbeatAt"] != seen).then_some(())
    })
    .await;
    cluster.worker_mut(&victim).proc.kill();
    let killed_at = now_ms();
    wait_worker(&api, &victim, "availability", json!("unreachable")).await;

    let mut lost_sec = Vec::new();
    for user in &lost {
        let again = api.allocate("hist", user).await;
        assert_eq!(again["outcome"], "redispatched", "{again}");
        let (status, session) = api.session("hist", user).await;
        assert_eq!(status, 200, "{session}");
        let activated = session["activatedAt"].as_u64().expect("activated");
        let gap_sec = (activated - killed_at) as f64 / 1000.0;
        let entry = &session["disruptions"][0];
        assert_eq!(entry["kind"], "workerLost", "{session}");
        assert_eq!(entry["workers"][0], victim.as_str(), "{session}");
        let sec = session["lostSec"].as_f64().unwrap();
        assert!(
            (sec - gap_sec).abs() <= 1.0,
            "{user}: lostSec {sec} against the measured gap {gap_sec}: {session}"
        );
        lost_sec.push(sec);
    }

    // A proctor grants s1 its lost time on the exam's page.
    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&token("proctor-1", Role::Proctor)).await;
    b.goto(&format!("{url}/admin/#/exams/hist")).await;
    b.wait_for("#exam-ledger tr[data-user='s1']").await;
    let kinds = b
        .js("return document.querySelector(\"#exam-ledger tr[data-user='s1'] [data-field='kinds']\").textContent")
        .await;
    assert_eq!(kinds, json!("worker lost"));
    b.screenshot("lost-time").await;
    b.click("button[data-key='grant-s1']").await;
    b.wait_text("#notice[data-kind='ok']", "the grant", |t| t.contains("s1"))
        .await;
    let (_, exam) = api.admin(Method::GET, "/api/vdi/exams/hist", None).await;
    let granted = exam["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["userId"] == "s1")
        .unwrap_or_else(|| panic!("{exam}"))["extraSec"]
        .as_u64()
        .unwrap();
    assert_eq!(granted as f64, lost_sec[0].ceil().max(1.0), "{exam}");
    b.screenshot("lost-time-granted").await;

    // The exam ends in a moment: s1 keeps its desktop exactly the time
    // granted past the end, then the leader releases it.
    let (status, changed) = api
        .admin(
            Method::PATCH,
            "/api/vdi/exams/hist",
            Some(json!({"endsAt": at(now_ms() + ENDS_IN.as_millis() as u64)})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let end = ends_at(&changed);
    let (_, session) = api.session("hist", "s1").await;
    let own_end = ends_at(&session);
    assert_eq!(
        own_end,
        end.plus(Duration::from_secs(granted)),
        "s1's desktop outlives the exam's end by the time granted: {session}"
    );
    let s2 = events
        .wait("sessionExpired", |e| e["session"]["userId"] == "s2")
        .await;
    assert!(
        s2["at"].as_u64().unwrap() >= end.as_millis() + GRACE_SEC * 1000,
        "{s2}"
    );
    let s1 = events
        .wait("sessionExpired", |e| e["session"]["userId"] == "s1")
        .await;
    let s1_at = s1["at"].as_u64().unwrap();
    assert!(
        s1_at >= own_end.as_millis() + GRACE_SEC * 1000,
        "released at its own end plus the grace: {s1}"
    );
    assert!(
        s1_at >= s2["at"].as_u64().unwrap(),
        "s1 after s2: {s1} {s2}"
    );
    let (status, gone) = api.session("hist", "s1").await;
    assert_eq!(status, 404, "{gone}");
    for user in ["s1", "s2"] {
        assert!(expired(&events, user).is_some());
    }

    // The exam's CSV export lists the students who lost time.
    let csv = http()
        .get(format!(
            "{}/api/vdi/exams/hist/disruptions?format=csv",
            api.base
        ))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for user in &lost {
        let row = csv
            .lines()
            .find(|l| l.starts_with(&format!("{user},")))
            .unwrap_or_else(|| panic!("{csv}"));
        assert!(row.contains(",workerLost,1,"), "{row}");
    }
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    b.quit().await;
}
