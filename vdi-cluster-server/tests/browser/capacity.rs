//! Capacity on schedule on the overview: an exam beyond the fleet, within
//! the scale lead, is asked of the sample scale hook, and the page lists the
//! request until its workers have joined ("Capacity requested" →
//! "Joined"); an exam later, beyond the fleet, shows "Fits with scale-up"
//! (in English, then in Vietnamese).

use reqwest::Method;
use serde_json::json;

use crate::common::{Api, ScaledCluster, admin_token};
use crate::freeze::in_secs;
use crate::harness::Browser;

async fn book(api: &Api, id: &str, students: u32, starts_in: u64) -> serde_json::Value {
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({"examId": id, "name": id, "students": students,
                "startsAt": in_secs(starts_in), "endsAt": in_secs(starts_in + 3_600)})),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    booked
}

#[tokio::test]
async fn the_overview_shows_capacity_requested_and_joined() {
    let Some(mut b) = Browser::start("capacity", "en-US").await else {
        return;
    };
    // w1 has 2 slots; the hook may add 16.
    let c = ScaledCluster::start(2, 16).await;
    let url = &c.cp.url;
    // Within the scale lead: asked of the hook at once (6 slots: two
    // workers of 4).
    let soon = book(&c.api, "soon", 8, 1_200).await;
    assert_eq!(soon["fits"], "with scale-up", "{soon}");
    // Beyond the scale lead and beyond the fleet even once those joined:
    // counted on the hook, not asked yet.
    let later = book(&c.api, "later", 14, 3 * 3_600).await;
    assert_eq!(later["fits"], "with scale-up", "{later}");

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    b.wait_for("#overview-capacity").await;
    b.wait_text(
        "#capacity-requests tr[data-state='joined']",
        "the request, joined",
        |t| t.contains("soon") && t.contains("Joined") && t.contains("scale-"),
    )
    .await;
    b.wait_text(
        "#overview-exams [data-exam='later']",
        "the later exam fitting with scale-up",
        |t| t.contains("Fits with scale-up"),
    )
    .await;
    b.check_accessibility("overview with a capacity request")
        .await;
    b.screenshot("capacity-joined").await;

    b.js(
        "const s = document.getElementById('lang'); s.value = 'vi'; \
          s.dispatchEvent(new Event('change')); return null;",
    )
    .await;
    b.wait_text(
        "#capacity-requests tr[data-state='joined']",
        "the request, in Vietnamese",
        |t| t.contains("Đã tham gia"),
    )
    .await;
    b.wait_text(
        "#overview-exams [data-exam='later']",
        "scale-up, in Vietnamese",
        |t| t.contains("Đủ chỗ khi mở rộng"),
    )
    .await;
    b.check_accessibility("overview with a capacity request (vi)")
        .await;
    b.screenshot("capacity-joined-vi").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.quit().await;
}
