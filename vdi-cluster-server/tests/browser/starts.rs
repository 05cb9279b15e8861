//! Paced starts on an exam's page, in Vietnamese: a booked exam's students
//! placed through the start permits show as desktops up, with the wait
//! and each worker's start limit and rate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;

use crate::common::{Cluster, CpOptions, admin_token, eventually};
use crate::harness::Browser;

fn in_secs(secs: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(secs);
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(now.as_millis()).unwrap(),
    ))
}

#[tokio::test]
async fn an_exam_page_shows_its_paced_starts() {
    let Some(mut b) = Browser::start("paced-starts", "vi-VN").await else {
        return;
    };
    let options = CpOptions {
        extra: vec!["--pace-starts".into(), "true".into()],
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[4], options).await;
    let (api, url) = (&cluster.api, &cluster.cp.url);
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({"examId": "paced", "name": "Paced",
                        "startsAt": in_secs(600), "endsAt": in_secs(4_200), "students": 2})),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    for user in ["s1", "s2"] {
        let (status, body) = api.try_allocate("paced", user).await.unwrap();
        assert!(matches!(status.as_u16(), 201 | 202), "{status} {body}");
    }
    eventually("both desktops up", || async {
        let (a, x) = api.session("paced", "s1").await;
        let (b, y) = api.session("paced", "s2").await;
        (a == 200 && b == 200 && x["state"] == "active" && y["state"] == "active").then_some(())
    })
    .await;

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    b.goto(&format!("{url}/admin/#/exams")).await;
    b.wait_for("#booking-form").await;
    b.goto(&format!("{url}/admin/#/exams/paced")).await;
    b.wait_for("#exam-starts-facts").await;
    let heading = b
        .wait_text("#h-starts", "the starts panel", |t| !t.is_empty())
        .await;
    assert_eq!(heading, "Khởi động máy");
    let up = b
        .js("return document.querySelector('#exam-starts-facts [data-field=started]').textContent")
        .await;
    assert_eq!(up, json!("2"));
    let worker = b
        .wait_for("#exam-start-workers tr[data-worker]")
        .await
        .attr("data-worker")
        .await
        .unwrap();
    assert!(worker.is_some(), "a worker row");
    b.check_accessibility("exam starts").await;
    b.screenshot("exam-starts").await;
    assert!(b.console_errors().await.is_empty());
    b.quit().await;
}
