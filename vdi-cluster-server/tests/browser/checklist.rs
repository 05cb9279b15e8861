//! An ADMIN runs the exam platform's checklist (B–E,
//! `docs/compat/exam-platform-runbook.md`) from the page: signs in with
//! the keyboard, reads the exam platform's figures, books an exam (and sees the
//! suggested start when it does not fit), watches a worker go unreachable,
//! reconciles, drains then disables a worker (refused while sessions
//! remain), force-disables one with a reason, reads the audit trail,
//! prewarms, switches to Vietnamese and reads the page on a phone.

use fantoccini::key::Key;
use reqwest::Method;
use rustix::process::Signal;
use serde_json::{Value, json};

use crate::common::{Api, Cluster, CpOptions, admin_token, eventually, wait_worker};
use crate::harness::{Browser, keep_for_readme};

/// The overview's three figures, as the page shows them.
async fn page_figures(b: &Browser) -> Value {
    b.js("return ['fig-workers', 'fig-slots', 'fig-active']
            .map((id) => document.getElementById(id)?.textContent ?? null);")
        .await
}

fn summary_figures(s: &Value) -> Value {
    json!([
        format!("{} / {}", s["healthyWorkers"], s["totalWorkers"]),
        format!(
            "{} / {}",
            s["totalAvailableSessions"], s["totalMaxSessions"]
        ),
        s["totalActiveSessions"].to_string(),
    ])
}

/// Waits until the page's figures equal `GET /api/vdi/workers/summary`.
async fn figures_match(b: &Browser, api: &Api) -> Value {
    eventually("the page's figures to equal the summary", || async {
        let summary = api.summary().await;
        (page_figures(b).await == summary_figures(&summary)).then_some(summary)
    })
    .await
}

async fn book(api: &Api, body: &Value) -> (reqwest::StatusCode, Value) {
    api.admin(Method::POST, "/api/vdi/exams", Some(body.clone()))
        .await
}

#[tokio::test]
async fn an_admin_runs_the_runbook_checklist_from_the_page() {
    let Some(mut b) = Browser::start("admin", "en-US").await else {
        return;
    };
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = &cluster.api;
    let url = &cluster.cp.url;

    // Sign in, by keyboard only: the token, Tab to the button, Enter.
    b.goto(&format!("{url}/")).await;
    b.wait_for("#signin-form").await;
    b.check_accessibility("sign-in").await;
    b.screenshot("sign-in").await;
    b.fill("#token", &admin_token()).await;
    b.wait_for("#token")
        .await
        .send_keys(&Key::Tab)
        .await
        .unwrap();
    let focused = b.client.active_element().await.unwrap();
    assert_eq!(
        focused.attr("id").await.unwrap().as_deref(),
        Some("sign-in")
    );
    let outline = b
        .js("return getComputedStyle(document.activeElement).outlineStyle")
        .await;
    assert_ne!(outline, json!("none"), "the focused button shows its focus");
    focused.send_keys(&Key::Enter).await.unwrap();

    // B: the overview's figures are the summary's.
    b.wait_for("#fig-workers").await;
    let summary = figures_match(&b, api).await;
    assert_eq!(summary["healthyWorkers"], 2);
    assert_eq!(summary["totalMaxSessions"], 8);
    let html = b.client.source().await.unwrap();
    assert!(!html.contains("eyJ"), "the token is not in the page");
    let tz = b
        .js("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        .await;
    b.wait_text("#tz", "the time zone", |t| t.contains(tz.as_str().unwrap()))
        .await;
    b.check_accessibility("overview").await;
    let shot = b.screenshot("overview").await;
    eprintln!("overview screenshot: {}", shot.display());

    // Two students start: the figures follow without a reload.
    let first = api.allocate("e1", "u1").await;
    api.allocate("e1", "u2").await;
    let busy = first["workerCode"].as_str().unwrap().to_owned();
    let idle = if busy == "w1" { "w2" } else { "w1" }.to_owned();
    b.wait_text("#fig-active", "two active sessions", |t| t == "2")
        .await;
    figures_match(&b, api).await;

    // Exams: a booking that does not fit shows the API's answer and the
    // suggested start; taking the suggestion books it.
    b.click("a[data-view='exams']").await;
    b.wait_for("#booking-form").await;
    b.wait_for("#exams-figures .cards").await;
    for code in ["w1", "w2"] {
        b.wait_for(&format!(
            "#exams-workers li[data-code='{code}'] [data-status='active']"
        ))
        .await;
    }
    b.check_accessibility("exams").await;
    let start = b
        .js("return new Date(document.getElementById('book-start').value).toISOString()")
        .await;
    let end = b
        .js("return new Date(document.getElementById('book-end').value).toISOString()")
        .await;
    let mut booked = false;
    for students in (1..=8).rev() {
        let body = json!({"examId": "morning", "name": "Morning exam", "startsAt": start,
                          "endsAt": end, "students": students});
        if book(api, &body).await.0 == 201 {
            booked = true;
            break;
        }
    }
    assert!(booked, "an exam filling the cluster is booked");
    b.fill("#book-id", "overflow").await;
    b.fill("#book-name", "Overflow exam").await;
    b.fill("#book-students", "1").await;
    // The folded options: half the students prewarmed, no waiting room.
    b.click("#booking-options > summary").await;
    b.fill("#book-prewarm-percent", "50").await;
    b.click("#book-queue").await;
    b.click("#book-submit").await;
    let shown = b.notice("error").await;
    let (status, refusal) = book(
        api,
        &json!({"examId": "overflow", "name": "Overflow exam", "startsAt": start,
                "endsAt": end, "students": 1}),
    )
    .await;
    assert_eq!(status, 409, "{refusal}");
    assert_eq!(shown, refusal["message"].as_str().unwrap());
    let suggestion = b.wait_for("#suggested-start").await;
    assert_eq!(
        suggestion
            .attr("data-earliest-start")
            .await
            .unwrap()
            .as_deref(),
        refusal["earliestStart"].as_str(),
    );
    b.check_accessibility("booking refused").await;
    b.screenshot("booking-refused").await;
    b.click("#use-suggested").await;
    b.click("#book-submit").await;
    b.wait_text("#notice[data-kind='ok']", "the booking", |t| {
        t.contains("overflow")
    })
    .await;
    b.wait_for("tr[data-exam='overflow']").await;
    let (_, overflow) = api
        .admin(Method::GET, "/api/vdi/exams/overflow", None)
        .await;
    assert_eq!(overflow["prewarm"]["percent"], 50, "{overflow}");
    assert_eq!(overflow["queue"], false, "{overflow}");
    b.click("a[data-key='exam-morning']").await;
    b.wait_for("#exam-facts").await;
    b.check_accessibility("exam detail").await;
    b.screenshot("exam-detail").await;

    // The overview lists the booked exams: the README's picture.
    b.click("a[data-view='overview']").await;
    b.wait_for("#overview-exams tr[data-exam='overflow']").await;
    figures_match(&b, api).await;
    let shot = b.screenshot("overview-with-exams").await;
    keep_for_readme(&shot);

    // A worker's heartbeat stops: its row turns unreachable, no reload.
    b.click("a[data-view='workers']").await;
    b.wait_for(&format!("tr[data-code='{busy}']")).await;
    // Live refreshes keep the keyboard focus where it was.
    b.js(
        "const link = document.querySelector(\"a[data-key='worker-w1']\");
          window.refreshes = 0;
          new MutationObserver(() => { window.refreshes += 1; })
            .observe(document.getElementById('workers-table'), {childList: true});
          link.focus();",
    )
    .await;
    eventually("a live refresh of the table", || async {
        (b.js("return window.refreshes").await.as_i64() > Some(0)).then_some(())
    })
    .await;
    assert_eq!(
        b.js("return document.activeElement.dataset.key").await,
        json!("worker-w1"),
        "the focus survives a refresh"
    );
    b.check_accessibility("workers").await;
    b.screenshot("workers").await;
    cluster.worker(&idle).proc.signal(Signal::STOP);
    b.wait_for(&format!(
        "tr[data-code='{idle}'][data-status='unreachable']"
    ))
    .await;
    b.screenshot("worker-unreachable").await;
    cluster.worker(&idle).proc.signal(Signal::CONT);
    b.wait_for(&format!("tr[data-code='{idle}'][data-status='active']"))
        .await;

    // C: Reconcile now, with its report.
    b.click("#reconcile-now").await;
    b.wait_for("#reconcile-result #reconcile-report").await;
    assert_eq!(b.notice("ok").await, "Reconcile finished.");
    // An operator's pass runs to the end of the keyspace.
    b.wait_text(
        "#reconcile-result [data-field='pass']",
        "the pass's progress",
        |t| t.starts_with("complete: "),
    )
    .await;
    b.screenshot("reconciled").await;

    // D: Drain, wait for drained, then Disable; Disable is refused while
    // sessions remain, with the API's message.
    b.click(&format!("a[data-key='worker-{busy}']")).await;
    b.wait_for("#worker-facts").await;
    // What the agent reports about its host: its address and version.
    b.wait_text("[data-field='ipAddress']", "the worker's address", |t| {
        t == "127.0.0.1"
    })
    .await;
    b.wait_text("[data-field='agentVersion']", "the agent's version", |t| {
        t == env!("CARGO_PKG_VERSION")
    })
    .await;
    b.check_accessibility("worker detail").await;
    b.click("#drain").await;
    b.notice("ok").await;
    wait_worker(api, &busy, "isDraining", json!(true)).await;
    b.wait_text("#worker-drain", "the drain's blockers", |t| {
        t.contains("u1")
    })
    .await;
    b.click("#disable").await;
    let shown = b.notice("error").await;
    let (status, refusal) = api
        .admin(
            Method::PATCH,
            &format!("/api/vdi/workers/{busy}"),
            Some(json!({"isEnabled": false})),
        )
        .await;
    assert_eq!(status, 409, "{refusal}");
    assert_eq!(shown, refusal["message"].as_str().unwrap());
    assert_eq!(api.worker(&busy).await["isEnabled"], true);
    b.screenshot("disable-refused").await;
    api.release("e1", "u1").await;
    api.release("e1", "u2").await;
    b.wait_text("[data-field='drainStatus']", "drained", |t| t == "drained")
        .await;
    b.screenshot("drained").await;
    b.click("#disable").await;
    b.wait_text("#notice[data-kind='ok']", "disabled", |t| {
        t.contains("disabled")
    })
    .await;
    wait_worker(api, &busy, "isEnabled", json!(false)).await;
    b.click("#activate").await;
    wait_worker(api, &busy, "isEnabled", json!(true)).await;
    wait_worker(api, &busy, "isDraining", json!(false)).await;

    // Force disable asks for a reason, which the audit trail keeps.
    let session = api.allocate("e2", "u3").await;
    let holder = session["workerCode"].as_str().unwrap().to_owned();
    b.goto(&format!("{url}/admin/#/workers/{holder}")).await;
    b.wait_text("[data-field='slots']", "one session", |t| {
        t.starts_with('1')
    })
    .await;
    b.click("#force-disable").await;
    b.wait_for("#force-dialog[open]").await;
    b.check_accessibility("force-disable dialog").await;
    b.fill("#force-reason", "disk failing").await;
    b.screenshot("force-disable").await;
    b.click("#force-confirm").await;
    b.wait_text("#notice[data-kind='ok']", "forced", |t| {
        t.contains("by force")
    })
    .await;
    wait_worker(api, &holder, "isEnabled", json!(false)).await;
    let audit = api.get("/api/vdi/audit").await;
    let forced = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "force-disable")
        .expect("a force-disable audit entry");
    assert_eq!(forced["detail"]["reason"], "disk failing");

    // Filters: only the disabled worker.
    b.click("a[data-view='workers']").await;
    b.wait_for("#workers").await;
    b.js("document.getElementById('filter-status').value = 'disabled'")
        .await;
    b.click("#worker-filters button[type='submit']").await;
    b.wait_text("#workers-count", "one disabled worker", |t| {
        t == "1 worker(s)"
    })
    .await;
    b.wait_for(&format!("tr[data-code='{holder}'][data-status='disabled']"))
        .await;
    b.click("#filter-clear").await;
    b.wait_text("#workers-count", "every worker", |t| t == "2 worker(s)")
        .await;

    // E: the audit trail and the events, newest first; an export.
    b.click("a[data-view='audit']").await;
    let row = format!("#audit tr[data-action='force-disable'][data-target='{holder}']");
    b.wait_text(&row, "the reason in the audit trail", |t| {
        t.contains("disk failing")
    })
    .await;
    b.wait_for("#events-list table").await;
    b.check_accessibility("audit and events").await;
    b.screenshot("audit").await;

    // B.4: Prewarm with a count.
    b.click("a[data-view='exams']").await;
    b.fill("#prewarm-exam", "morning").await;
    b.fill("#prewarm-count", "2").await;
    b.click("#prewarm-submit").await;
    b.wait_text("#notice[data-kind='ok']", "the prewarm", |t| {
        t.contains("Prewarm of morning")
    })
    .await;
    b.screenshot("prewarm").await;

    // Vietnamese, switched on the page.
    b.click("a[data-view='overview']").await;
    b.js("const s = document.getElementById('lang'); s.value = 'vi';
          s.dispatchEvent(new Event('change'));")
        .await;
    b.wait_text("a[data-view='overview']", "Vietnamese", |t| {
        t == "Tổng quan"
    })
    .await;
    b.wait_for("#fig-workers").await;
    figures_match(&b, api).await;
    b.wait_for("#overview-reconcile #reconcile-report").await;
    b.wait_for("#recent-events li").await;
    b.check_accessibility("overview in Vietnamese").await;
    b.screenshot("overview-vi").await;

    // A phone: nothing wider than the screen.
    b.client.set_window_size(390, 844).await.unwrap();
    for (view, loaded) in [
        ("overview", "#fig-workers"),
        ("workers", "#workers"),
        ("exams", "#exams"),
    ] {
        b.click(&format!("a[data-view='{view}']")).await;
        b.wait_for(&format!("a[data-view='{view}'][aria-current='page']"))
            .await;
        b.wait_for(loaded).await;
        b.screenshot(&format!("phone-{view}")).await;
        let page = b
            .js("const root = document.documentElement;
                 const width = root.clientWidth;
                 return {overflow: root.scrollWidth - width,
                         widest: [...document.querySelectorAll('body *')]
                           .filter((el) => el.getBoundingClientRect().right > width + 1)
                           .slice(0, 5)
                           .map((el) => `${el.tagName}#${el.id}.${el.className}`)};")
            .await;
        assert!(
            page["overflow"].as_i64().unwrap() <= 0,
            "{view} is wider than a phone: {page}"
        );
    }
    b.quit().await;
}
