//! Signing in and out as an operator sees it: a signed-out visit logs no
//! console error and shows no navigation; the overview says that no
//! student is waiting; signing out hides the navigation; an ADMIN signs
//! every operator out everywhere (English, then Vietnamese), and the
//! sessions it ended open nothing any more.

use reqwest::header::SET_COOKIE;
use serde_json::Value;
use vdi_cluster_server::auth::Role;

use crate::common::{Cluster, CpOptions};
use crate::harness::{Browser, token};

/// Whether `css` is laid out (not `display: none`).
async fn shown(b: &Browser, css: &str) -> bool {
    let script = format!(
        "const el = document.querySelector({css:?}); return Boolean(el) && getComputedStyle(el).display !== 'none';"
    );
    b.js(&script).await == Value::Bool(true)
}

#[tokio::test]
async fn operators_sign_out_and_an_admin_signs_everyone_out() {
    let Some(mut b) = Browser::start("sessions", "en-US").await else {
        return;
    };
    let cluster = Cluster::start(&[4], CpOptions::default()).await;
    let url = &cluster.cp.url;

    // Signed out: the sign-in form, no navigation, nothing in the console.
    b.goto(&format!("{url}/admin/")).await;
    b.wait_for("#signin-form").await;
    assert!(!shown(&b, "#nav").await, "navigation before sign-in");
    assert!(!shown(&b, "#sign-out-all").await);
    assert_eq!(
        b.console_errors().await,
        Vec::<String>::new(),
        "a signed-out visit"
    );

    b.sign_in(&token("ops-1", Role::Admin)).await;
    assert!(shown(&b, "#nav").await);
    b.wait_text("#overview-queues", "nobody waits", |t| {
        t == "No student is waiting."
    })
    .await;
    b.wait_text("#sign-out-all", "the admin's control", |t| {
        t == "Sign out everywhere"
    })
    .await;
    b.check_accessibility("overview (admin)").await;
    b.screenshot("signed-in").await;

    // Sign out: the navigation goes with the session.
    b.click("#sign-out").await;
    b.wait_for("#signin-form").await;
    assert!(!shown(&b, "#nav").await, "navigation after sign-out");
    assert!(!shown(&b, "#sign-out-all").await);
    b.goto(&format!("{url}/admin/")).await;
    b.wait_for("#signin-form").await;
    assert_eq!(
        b.console_errors().await,
        Vec::<String>::new(),
        "after sign-out"
    );

    // Another operator signed in elsewhere (here, a script).
    let http = reqwest::Client::new();
    let other = http
        .post(format!("{url}/api/vdi/auth/session"))
        .bearer_auth(token("proctor-9", Role::Proctor))
        .send()
        .await
        .unwrap();
    let cookie = other.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let csrf = other.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let workers = || {
        http.get(format!("{url}/api/vdi/workers"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
    };
    assert_eq!(workers().send().await.unwrap().status(), 200);

    // In Vietnamese, the ADMIN signs everyone out everywhere.
    b.sign_in(&token("ops-1", Role::Admin)).await;
    b.js("const s = document.getElementById('lang'); s.value = 'vi'; s.dispatchEvent(new Event('change'));")
        .await;
    b.wait_text("#sign-out-all", "in Vietnamese", |t| {
        t == "Đăng xuất khỏi mọi nơi"
    })
    .await;
    b.wait_text("#overview-queues", "nobody waits (vi)", |t| {
        t == "Không có thí sinh nào đang chờ."
    })
    .await;
    b.click("#sign-out-all").await;
    b.wait_for("#sign-out-all-dialog[open]").await;
    b.check_accessibility("sign out everywhere (vi)").await;
    b.screenshot("sign-out-everywhere").await;
    b.click("#sign-out-all-confirm").await;
    let done = b.notice("ok").await;
    assert!(done.contains("2"), "{done}");
    b.wait_for("#signin-form").await;
    assert!(!shown(&b, "#nav").await);
    assert_eq!(
        workers().send().await.unwrap().status(),
        401,
        "the other session"
    );
    b.screenshot("signed-out-everywhere").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.quit().await;
}
