//! An exam's network policy on the operators' page, in Vietnamese: the
//! booking form's network section refuses a network with host bits naming
//! the entry, books the exam restricted to its site, and the exam's page
//! shows the policy; axe clean, and no console error besides the refusal.

use reqwest::Method;
use serde_json::json;

use crate::common::{Cluster, CpOptions, admin_token};
use crate::harness::Browser;

#[tokio::test]
async fn an_exam_is_booked_with_a_network_policy_and_shows_it() {
    let Some(mut b) = Browser::start("network-policy", "vi-VN").await else {
        return;
    };
    let cluster = Cluster::start(&[4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    b.goto(&format!("{url}/admin/#/exams")).await;
    b.wait_for("#booking-form").await;
    b.fill("#book-id", "mang").await;
    b.fill("#book-name", "Thi mạng máy tính").await;
    b.fill("#book-students", "2").await;
    b.click("#booking-network > summary").await;
    let summary = b
        .js("return document.querySelector('#booking-network > summary').textContent")
        .await;
    assert_eq!(summary, json!("Mạng của máy thi"), "in Vietnamese");
    b.js(
        "const s = document.getElementById('book-net-mode'); s.value = 'restrict'; return s.value",
    )
    .await;
    b.fill("#book-net-domains", "sot.umtoj.edu.vn").await;
    b.fill("#book-net-cidrs", "103.90.220.1/22").await;
    b.fill("#book-net-origin", "203.210.213.198").await;
    b.check_accessibility("booking form with its network section")
        .await;
    b.screenshot("network-form").await;

    // A network with host bits: refused, the entry named, nothing booked.
    b.click("#book-submit").await;
    let shown = b.notice("error").await;
    assert!(shown.contains("networkPolicy.allowedCidrs[0]"), "{shown}");
    assert!(shown.contains("103.90.220.0/22"), "{shown}");
    let refused = b.console_errors().await;
    assert!(
        refused.iter().all(|e| e.contains("422")),
        "only the refused booking: {refused:?}"
    );
    let (status, _) = api.admin(Method::GET, "/api/vdi/exams/mang", None).await;
    assert_eq!(status, 404, "nothing booked");

    b.fill("#book-net-cidrs", "103.90.220.0/22, 42.1.76.128/28")
        .await;
    b.click("#book-submit").await;
    b.wait_text("#notice[data-kind='ok']", "the booking", |t| {
        t.contains("mang")
    })
    .await;
    let (_, exam) = api.admin(Method::GET, "/api/vdi/exams/mang", None).await;
    assert_eq!(
        exam["networkPolicy"],
        json!({"restrictInternet": true, "allowedDomains": ["sot.umtoj.edu.vn"],
               "allowedCidrs": ["103.90.220.0/22", "42.1.76.128/28"],
               "originIp": "203.210.213.198", "enforceStrict": true}),
        "{exam}"
    );

    b.wait_for("tr[data-exam='mang']").await;
    b.click("a[data-key='exam-mang']").await;
    b.wait_for("#exam-network").await;
    let field = |key: &str| {
        format!("return document.querySelector('#exam-network [data-field=\"{key}\"]').textContent")
    };
    assert_eq!(
        b.js(&field("networkMode")).await,
        json!("Chỉ các đích được phép")
    );
    assert_eq!(
        b.js(&field("allowedCidrs")).await,
        json!("103.90.220.0/22, 42.1.76.128/28")
    );
    assert_eq!(b.js(&field("originIp")).await, json!("203.210.213.198"));
    assert_eq!(b.js(&field("enforceStrict")).await, json!("Có"));
    b.check_accessibility("exam page with its network policy")
        .await;
    b.js("document.getElementById('exam-network').scrollIntoView(); return null")
        .await;
    b.screenshot("network-exam-page").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.quit().await;
}
