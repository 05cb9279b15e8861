//! Paginated lists on the page: with more workers, audit entries and
//! webhook deliveries than one page holds, the workers' table, the audit
//! trail and an endpoint's deliveries show "x–y of total" with Previous /
//! Next, and the second page shows the rows after the first's (in
//! English, then the pager in Vietnamese).

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Cluster, CpOptions, WORKER_TOKEN, admin_token};
use crate::harness::Browser;

/// Workers registered beside the cluster's own: 26 in all, two pages.
const EXTRA_WORKERS: usize = 25;

async fn register(url: &str, i: usize) {
    let code = format!("p-{i:02}");
    let body = json!({
        "code": code, "name": code, "apiBaseUrl": format!("http://127.0.0.1:{}", 20_000 + i),
        "totalCpuCores": 4, "totalMemoryMb": 4096, "vmCpuCores": 1, "vmMemoryMb": 1024,
        "activeSessions": 0,
    });
    let r = reqwest::Client::new()
        .post(format!("{url}/api/vdi/workers/heartbeat"))
        .header("x-worker-token", WORKER_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{code}: {}", r.status());
}

/// The `data-…` attribute `attr` of the rows of table `id`.
async fn rows(b: &Browser, id: &str, attr: &str) -> Vec<String> {
    let script = format!(
        "return [...document.querySelectorAll('#{id} tbody tr')].map((r) => r.getAttribute('{attr}'));"
    );
    match b.js(&script).await {
        Value::Array(items) => items
            .into_iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => panic!("rows of {id}: {other}"),
    }
}

async fn range(b: &Browser, pager: &str, what: &str, expected: &str) {
    let css = format!("#{pager} [data-field='range']");
    b.wait_text(&css, what, |t| t == expected).await;
}

#[tokio::test]
async fn workers_and_the_audit_trail_page_through() {
    let Some(mut b) = Browser::start("pages", "en-US").await else {
        return;
    };
    let cluster = Cluster::start(&[4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;
    for i in 1..=EXTRA_WORKERS {
        register(url, i).await;
    }
    let (status, hook) = api
        .admin(
            Method::POST,
            "/api/vdi/webhooks",
            Some(
                json!({"url": "http://127.0.0.1:9/hook", "eventTypes": ["worker.policy_changed"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    // 24 admin actions: more than a page of the audit trail, and 24
    // deliveries of their alerts.
    for _ in 0..12 {
        for draining in [true, false] {
            let (status, body) = api
                .admin(
                    Method::PATCH,
                    "/api/vdi/workers/p-01",
                    Some(json!({"isDraining": draining})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let audit_total = api.get("/api/vdi/audit?limit=1").await["total"]
        .as_u64()
        .unwrap();
    assert!(audit_total > 20, "{audit_total}");

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;

    // Workers: 20 a page, by code.
    b.click("a[data-view='workers']").await;
    range(
        &b,
        "workers-pager",
        "the first page of workers",
        "1–20 of 26",
    )
    .await;
    let first = rows(&b, "workers", "data-code").await;
    assert_eq!(first.len(), 20, "{first:?}");
    assert_eq!(first[0], "p-01");
    assert!(
        b.has("#workers-pager button[data-key='workers-pager-prev'][disabled]")
            .await
    );
    b.check_accessibility("workers, page 1").await;
    b.screenshot("workers-page-1").await;
    b.click("#workers-pager button[data-key='workers-pager-next']")
        .await;
    range(
        &b,
        "workers-pager",
        "the second page of workers",
        "21–26 of 26",
    )
    .await;
    let second = rows(&b, "workers", "data-code").await;
    assert_eq!(second.len(), 6, "{second:?}");
    let seen: BTreeSet<_> = first.iter().chain(&second).collect();
    assert_eq!(
        seen.len(),
        26,
        "the pages do not overlap: {first:?} {second:?}"
    );
    assert!(second.contains(&"w1".to_owned()), "{second:?}");
    assert!(
        b.has("#workers-pager button[data-key='workers-pager-next'][disabled]")
            .await
    );
    b.check_accessibility("workers, page 2").await;
    b.screenshot("workers-page-2").await;
    b.click("#workers-pager button[data-key='workers-pager-prev']")
        .await;
    range(&b, "workers-pager", "back to the first page", "1–20 of 26").await;

    // The audit trail: newest first, 20 a page.
    b.click("a[data-view='audit']").await;
    let whole = format!("1–20 of {audit_total}");
    range(&b, "audit-pager", "the first page of the trail", &whole).await;
    let newest = b
        .js("return [...document.querySelectorAll('#audit tbody tr')].map((r) => r.textContent);")
        .await;
    b.check_accessibility("audit, page 1").await;
    b.click("#audit-pager button[data-key='audit-pager-next']")
        .await;
    let rest = format!("21–{audit_total} of {audit_total}");
    range(&b, "audit-pager", "the second page of the trail", &rest).await;
    let older = b
        .js("return [...document.querySelectorAll('#audit tbody tr')].map((r) => r.textContent);")
        .await;
    assert_eq!(
        older.as_array().unwrap().len(),
        usize::try_from(audit_total).unwrap() - 20
    );
    assert_ne!(newest, older);
    b.check_accessibility("audit, page 2").await;
    b.screenshot("audit-page-2").await;

    // The endpoint's deliveries: 24, newest first, 20 a page.
    range(
        &b,
        "deliveries-pager",
        "the first page of deliveries",
        "1–20 of 24",
    )
    .await;
    let newer = rows(&b, "deliveries", "data-delivery").await;
    b.click("#deliveries-pager button[data-key='deliveries-pager-next']")
        .await;
    range(
        &b,
        "deliveries-pager",
        "the second page of deliveries",
        "21–24 of 24",
    )
    .await;
    let older = rows(&b, "deliveries", "data-delivery").await;
    let seen: BTreeSet<_> = newer.iter().chain(&older).collect();
    assert_eq!(
        (newer.len(), older.len(), seen.len()),
        (20, 4, 24),
        "{newer:?} {older:?}"
    );
    b.check_accessibility("deliveries, page 2").await;
    b.screenshot("deliveries-page-2").await;

    // In Vietnamese.
    b.js(
        "const s = document.getElementById('lang'); s.value = 'vi'; \
          s.dispatchEvent(new Event('change')); return null;",
    )
    .await;
    let vi = format!("1–20 trên {audit_total}");
    range(&b, "audit-pager", "the pager in Vietnamese", &vi).await;
    b.wait_text(
        "#audit-pager button[data-key='audit-pager-next']",
        "Next in Vietnamese",
        |t| t == "Trang sau",
    )
    .await;
    b.check_accessibility("audit (vi)").await;
    b.screenshot("audit-vi").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.quit().await;
}
