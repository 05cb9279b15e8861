//! A proctor, in Vietnamese, reads an exam's lost time on its page: a
//! student moved off a worker an operator disabled is listed with their
//! lost seconds and why, the figures and the CSV link are there, and the
//! "grant the lost time" button extends the student's own end by it;
//! axe clean, no console error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_server::auth::Role;

use crate::common::{Cluster, CpOptions};
use crate::harness::{Browser, token};

fn at(from_now: Duration) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + from_now;
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(now.as_millis()).unwrap(),
    ))
}

#[tokio::test]
async fn a_proctor_grants_a_student_their_lost_time() {
    let Some(mut b) = Browser::start("ledger", "vi-VN").await else {
        return;
    };
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;
    let (status, r) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({
                "examId": "dia", "name": "Địa lý", "students": 2,
                "startsAt": at(Duration::from_secs(5 * 3600)),
                "endsAt": at(Duration::from_secs(6 * 3600)),
            })),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let placed = api.allocate("dia", "sv1").await;
    let first = placed["workerCode"].as_str().unwrap().to_owned();
    let (status, r) = api
        .admin(
            Method::PATCH,
            &format!("/api/vdi/workers/{first}"),
            Some(json!({"isEnabled": false, "force": true})),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let moved = api.allocate("dia", "sv1").await;
    assert_eq!(moved["outcome"], "redispatched", "{moved}");
    let (_, session) = api.session("dia", "sv1").await;
    assert_eq!(session["disruptions"][0]["kind"], "moved", "{session}");

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&token("proctor-1", Role::Proctor)).await;
    b.goto(&format!("{url}/admin/#/exams/dia")).await;
    b.wait_for("#exam-ledger tr[data-user='sv1']").await;
    let heading = b
        .js("return document.getElementById('h-ledger').textContent")
        .await;
    assert_eq!(heading, json!("Thời gian bị mất"), "in Vietnamese");
    let kinds = b
        .js("return document.querySelector(\"#exam-ledger tr[data-user='sv1'] [data-field='kinds']\").textContent")
        .await;
    assert_eq!(kinds, json!("chuyển máy"));
    let csv = b
        .js("return document.getElementById('exam-ledger-csv').getAttribute('href')")
        .await;
    assert_eq!(csv, json!("/api/vdi/exams/dia/disruptions?format=csv"));
    b.check_accessibility("exam page with its lost time").await;
    b.screenshot("ledger").await;

    b.click("button[data-key='grant-sv1']").await;
    b.wait_text("#notice[data-kind='ok']", "the grant", |t| {
        t.contains("sv1")
    })
    .await;
    let (_, exam) = api.admin(Method::GET, "/api/vdi/exams/dia", None).await;
    let granted = exam["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["userId"] == "sv1")
        .unwrap_or_else(|| panic!("{exam}"));
    let lost = session["lostSec"].as_f64().unwrap();
    assert_eq!(
        granted["extraSec"].as_f64().unwrap(),
        lost.ceil().max(1.0),
        "{exam}"
    );
    b.screenshot("ledger-granted").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    b.quit().await;
}
