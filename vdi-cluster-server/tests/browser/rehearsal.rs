//! An exam's rehearsal on its page, in Vietnamese and in English: an admin
//! runs it from the page, one worker of two reports the exam's image
//! missing, and the go / no-go panel shows the verdict, that the exam no
//! longer fits without it, and the worker with its reason and a Re-check
//! button; the audit view says who ran it, the verdict and the worker left
//! out, in words; axe clean, no console error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::format_rfc3339;

use crate::common::{Api, ControlPlane, CpOptions, Worker, WorkerOptions, admin_token, eventually};
use crate::harness::Browser;

fn in_secs(secs: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(secs);
    format_rfc3339(Timestamp::from_millis(
        u64::try_from(now.as_millis()).unwrap(),
    ))
}

/// What the page must say in one language.
struct Texts {
    lang: &'static str,
    heading: &'static str,
    no_go: &'static str,
    image_missing: &'static str,
    recheck: &'static str,
    /// The audit trail's words for the run.
    audit_run: &'static str,
}

async fn the_report_names_the_failing_worker(texts: Texts) {
    let Some(mut b) = Browser::start(&format!("rehearsal-{}", texts.lang), texts.lang).await else {
        return;
    };
    let cp = ControlPlane::start(CpOptions::default()).await;
    let api = Api::new(&cp.url);
    let mut workers = Vec::new();
    for (code, check) in [("w1", "ok"), ("w2", "image-missing")] {
        let options = WorkerOptions {
            slots: 4,
            extra: vec!["--sim-check".into(), check.into()],
            ..WorkerOptions::default()
        };
        workers.push(Worker::start(code, &cp.api_base(), options).await);
    }
    eventually("both workers healthy", || async {
        (api.summary().await["healthyWorkers"] == 2).then_some(())
    })
    .await;
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({"examId": "reh", "name": "Rehearsed", "students": 6,
                        "startsAt": in_secs(7_200), "endsAt": in_secs(10_800)})),
        )
        .await;
    assert_eq!(status, 201, "{booked}");

    let url = &cp.url;
    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    b.goto(&format!("{url}/admin/#/exams")).await;
    b.wait_for("#booking-form").await;
    b.goto(&format!("{url}/admin/#/exams/reh")).await;
    b.wait_for("#exam-rehearsal-none").await;
    let heading = b
        .wait_text("#h-rehearsal", "the rehearsal panel", |t| !t.is_empty())
        .await;
    assert_eq!(heading, texts.heading);
    b.check_accessibility("exam rehearsal before a run").await;

    b.click("#exam-rehearsal-run").await;
    let row = "#exam-rehearsal-failing tr[data-worker=w2]";
    b.wait_for(row).await;
    let verdict = b
        .wait_text(
            "#exam-rehearsal-facts [data-field=verdict]",
            "the verdict",
            |t| !t.is_empty(),
        )
        .await;
    assert_eq!(verdict, texts.no_go);
    let outcome = b
        .js(&format!(
            "return document.querySelector('{row} [data-outcome]').textContent"
        ))
        .await;
    assert_eq!(outcome, json!(texts.image_missing));
    let reason = b
        .js(&format!(
            "return document.querySelector('{row} [data-field=reason]').textContent"
        ))
        .await;
    assert!(
        reason.as_str().unwrap().contains("simulated-exam-image"),
        "{reason}"
    );
    let recheck = b
        .js(&format!(
            "return document.querySelector('{row} button').textContent"
        ))
        .await;
    assert_eq!(recheck, json!(texts.recheck));
    let fits = b
        .js("return document.querySelector('#exam-rehearsal-facts [data-field=fitsWithoutFailing]').textContent")
        .await;
    assert_ne!(fits, json!(""));
    let ok_row = b
        .js("return document.querySelector('#exam-rehearsal-workers tr[data-worker=w1] [data-outcome]').dataset.outcome")
        .await;
    assert_eq!(ok_row, json!("ok"));
    b.check_accessibility("exam rehearsal").await;
    b.screenshot("exam-rehearsal").await;

    b.click("a[data-view='audit']").await;
    let audited = "#audit tr[data-action='rehearsal'][data-target='reh']";
    let text = b
        .wait_text(audited, "the run in the audit trail", |t| {
            t.contains(texts.audit_run)
        })
        .await;
    let left_out = format!("w2 ({})", texts.image_missing);
    assert!(text.contains(&left_out), "{text}");
    assert!(text.contains("e2e-admin"), "who ran it: {text}");
    b.check_accessibility("audit with a rehearsal").await;
    assert!(b.console_errors().await.is_empty());
    b.quit().await;
    drop(workers);
}

#[tokio::test]
async fn the_rehearsal_report_in_vietnamese() {
    the_report_names_the_failing_worker(Texts {
        lang: "vi-VN",
        heading: "Diễn tập",
        no_go: "Chưa sẵn sàng",
        image_missing: "thiếu image",
        recheck: "Kiểm tra lại",
        audit_run: "Chưa sẵn sàng: lần 1, đã kiểm tra 2 máy chủ.",
    })
    .await;
}

#[tokio::test]
async fn the_rehearsal_report_in_english() {
    the_report_names_the_failing_worker(Texts {
        lang: "en-US",
        heading: "Rehearsal",
        no_go: "No-go",
        image_missing: "image missing",
        recheck: "Re-check",
        audit_run: "No-go: run 1, 2 workers checked.",
    })
    .await;
}
