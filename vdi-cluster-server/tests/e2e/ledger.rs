//! A worker SIGKILLed mid-exam: its student who comes back is moved, and
//! the student's ledger shows `workerLost` with `lostSec` within a second
//! of the gap the test measures (from just after the worker's last
//! observed heartbeat, when it was killed, to the new desktop's
//! activation); the exam's CSV export lists the student.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::common::{Cluster, CpOptions, admin_token, eventually, http, wait_worker};

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_student_has_the_gap_in_their_ledger() {
    let mut cluster = Cluster::start(&[4, 4, 4], CpOptions::default()).await;
    let api = cluster.api.clone();
    let placed = api.allocate("geo", "s1").await;
    let victim = placed["workerCode"].as_str().unwrap().to_owned();

    // Kill it right after a heartbeat of it is seen: its last heartbeat is
    // then between that sighting and the kill.
    let seen = api.worker(&victim).await["lastHeartbeatAt"].clone();
    eventually("a fresh heartbeat of the victim", || async {
        (api.worker(&victim).await["lastHeartbeatAt"] != seen).then_some(())
    })
    .await;
    cluster.worker_mut(&victim).proc.kill();
    let killed_at = now_ms();

    wait_worker(&api, &victim, "availability", json!("unreachable")).await;
    let again = api.allocate("geo", "s1").await;
    assert_eq!(again["outcome"], "redispatched", "{again}");
    let (status, session) = api.session("geo", "s1").await;
    assert_eq!(status, 200, "{session}");
    let activated = session["activatedAt"].as_u64().expect("activated");
    let gap_sec = (activated - killed_at) as f64 / 1000.0;
    let entry = &session["disruptions"][0];
    assert_eq!(entry["kind"], "workerLost", "{session}");
    assert_eq!(entry["workers"][0], victim.as_str(), "{session}");
    let lost = session["lostSec"].as_f64().unwrap();
    assert!(
        (lost - gap_sec).abs() <= 1.0,
        "lostSec {lost} against the measured gap {gap_sec}: {session}"
    );

    let csv = http()
        .get(format!(
            "{}/api/vdi/exams/geo/disruptions?format=csv",
            api.base
        ))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("s1,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(row.contains(",workerLost,1,"), "{row}");
}
