//! The change freeze end to end: a control plane process, two worker
//! agents and an exam whose prewarm lead has begun. Draining a worker the
//! exam needs is refused with `safeFrom`; forced with a reason, the drain
//! goes through, is audited, and `worker.freeze_overridden` reaches a
//! webhook receiver, signed.

use reqwest::Method;
use serde_json::json;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::{Clock, SystemClock};

use crate::common::{Cluster, CpOptions, eventually};
use crate::webhooks::{Mode, Receiver, options};

const MIN_MS: u64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_under_a_running_exam_is_refused_until_forced_with_a_reason() {
    let receiver = Receiver::start(Mode::Up).await;
    let cluster = Cluster::start(
        &[10, 10],
        options(CpOptions::default(), &receiver, "cp-freeze"),
    )
    .await;
    let api = &cluster.api;

    // 18 slots bookable (10 % headroom); the exam needs 15, more than
    // either worker alone. It starts in five minutes: its prewarm lead
    // (15 minutes) has begun.
    let now = SystemClock.now().as_millis();
    let starts = vdi_cluster_core::Timestamp(now + 5 * MIN_MS);
    let ends = vdi_cluster_core::Timestamp(now + 65 * MIN_MS);
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({"examId": "final", "name": "Final", "students": 15,
                "startsAt": format_rfc3339(starts), "endsAt": format_rfc3339(ends)})),
        )
        .await;
    assert_eq!(status, 201, "{booked}");

    let (status, refused) = api
        .admin(Method::POST, "/api/vdi/workers/w1/drain", None)
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["change"], "drain");
    assert_eq!(refused["exams"][0]["examId"], "final", "{refused}");
    assert_eq!(refused["exams"][0]["shortfall"], 6, "{refused}");
    // Safe once the exam's window ends (teardown 5 minutes).
    let safe_from = format_rfc3339(vdi_cluster_core::Timestamp(ends.as_millis() + 5 * MIN_MS));
    assert_eq!(refused["safeFrom"], safe_from.as_str(), "{refused}");
    assert_eq!(api.worker("w1").await["isDraining"], false);

    let (status, forced) = api
        .admin(
            Method::POST,
            "/api/vdi/workers/w1/drain",
            Some(json!({"force": true, "reason": "failing disk"})),
        )
        .await;
    assert_eq!(status, 202, "{forced}");
    assert_eq!(api.worker("w1").await["isDraining"], true);

    let alert = eventually("worker.freeze_overridden delivered", || async {
        receiver
            .bodies("worker.freeze_overridden")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(alert["data"]["worker"], "w1", "{alert}");
    assert_eq!(alert["data"]["reason"], "failing disk", "{alert}");
    assert_eq!(alert["data"]["examIds"], json!(["final"]), "{alert}");
    assert_eq!(receiver.alerts("worker.freeze_overridden", "w1").len(), 1);
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("freeze-override"), "{audit}");
    assert!(audit.contains("failing disk"), "{audit}");
}
