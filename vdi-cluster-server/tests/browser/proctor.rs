//! A PROCTOR, whose browser prefers Vietnamese: the page opens in
//! Vietnamese, shows no admin-only control, and an admin request crafted
//! from their session is refused by the API; signing out ends the session.

use serde_json::json;
use vdi_cluster_server::auth::Role;

use crate::common::{Cluster, CpOptions, wait_worker};
use crate::harness::{Browser, token};

#[tokio::test]
async fn a_proctor_sees_only_what_a_proctor_may_do() {
    let Some(mut b) = Browser::start("proctor", "vi-VN").await else {
        return;
    };
    let cluster = Cluster::start(&[4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;

    b.goto(&format!("{url}/admin/")).await;
    b.wait_text("#signin-form h1", "Vietnamese from the browser", |t| {
        t == "Đăng nhập"
    })
    .await;
    b.sign_in(&token("proctor-1", Role::Proctor)).await;
    b.wait_text("#who", "the proctor", |t| t.contains("PROCTOR"))
        .await;
    assert!(
        b.js("return document.getElementById('sign-out-all').hidden;")
            .await
            == json!(true),
        "only an ADMIN signs everyone out"
    );
    b.check_accessibility("overview (proctor)").await;
    b.screenshot("overview").await;

    // Exams: the calendar and Prewarm (a proctor may prewarm), no booking.
    b.click("a[data-view='exams']").await;
    b.wait_for("#exams-figures .cards").await;
    b.wait_for("#prewarm-form").await;
    assert!(!b.has("#booking-form").await, "a proctor cannot book");
    b.check_accessibility("exams (proctor)").await;
    b.screenshot("exams").await;

    // Audit: admin only.
    b.click("a[data-view='audit']").await;
    b.wait_text("#audit-table", "the admin-only note", |t| {
        t == "Chỉ ADMIN được xem nhật ký thao tác."
    })
    .await;
    assert!(!b.has("#audit").await);
    b.check_accessibility("audit (proctor)").await;
    b.screenshot("audit").await;

    // Workers: a proctor operates them (the route table says so).
    b.goto(&format!("{url}/admin/#/workers/w1")).await;
    b.wait_for("#worker-facts").await;
    b.wait_text("[data-field='ipAddress']", "the worker's address", |t| {
        t == "127.0.0.1"
    })
    .await;
    assert_eq!(
        b.js("return document.querySelector(\"[data-field='ipAddress']\").previousElementSibling.textContent;")
            .await,
        json!("Địa chỉ IP"),
        "the host's facts in Vietnamese"
    );
    b.click("#drain").await;
    b.notice("ok").await;
    wait_worker(api, "w1", "isDraining", json!(true)).await;
    b.check_accessibility("worker detail (proctor)").await;
    b.screenshot("worker-drained").await;

    // Admin requests crafted from the proctor's session are refused, even
    // with the session's CSRF token; without it, any change is refused.
    let answers = b
        .js_async(
            "const s = await (await fetch('/api/vdi/auth/session')).json();
             const book = await fetch('/api/vdi/exams', {method: 'POST',
               headers: {'content-type': 'application/json', 'x-csrf-token': s.csrfToken},
               body: JSON.stringify({examId: 'x', name: 'x', startsAt: '2030-01-01T08:00:00Z',
                                     endsAt: '2030-01-01T09:00:00Z', students: 1})});
             const audit = await fetch('/api/vdi/audit');
             const noCsrf = await fetch('/api/vdi/workers/reconcile', {method: 'POST'});
             return {book: book.status, message: (await book.json()).message,
                     audit: audit.status, noCsrf: noCsrf.status};",
        )
        .await;
    assert_eq!(answers["book"], 403, "{answers}");
    assert!(
        answers["message"].as_str().unwrap().contains("ADMIN"),
        "{answers}"
    );
    assert_eq!(answers["audit"], 403, "{answers}");
    assert_eq!(answers["noCsrf"], 403, "{answers}");
    assert_eq!(api.get("/api/vdi/exams").await["exams"], json!([]));

    // Sign out: the cookie is gone.
    b.click("#sign-out").await;
    b.wait_for("#signin-form").await;
    let status = b
        .js_async("return (await fetch('/api/vdi/workers')).status;")
        .await;
    assert_eq!(status, 401);
    b.screenshot("signed-out").await;
    b.quit().await;
}
