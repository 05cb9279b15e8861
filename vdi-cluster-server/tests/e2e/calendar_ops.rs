//! The calendar driving operations, with real processes: an exam booked
//! beyond the fleet is asked of the sample scale hook
//! (`examples/deploy/scale-hook.sh`), whose workers join before the exam's
//! prewarm lead and are prewarmed for it, and after the exam are drained,
//! stopped by the hook and removed; and a drain scheduled for a moment
//! ahead is fired by the leader at its time, leaving the worker drained.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::{Clock, SystemClock, Timestamp};

use crate::common::{Cluster, CpOptions, ScaledCluster, eventually, eventually_within};

fn in_ms(ms: u64) -> String {
    format_rfc3339(Timestamp(SystemClock.now().as_millis() + ms))
}

/// The only capacity request once it is in `state`.
async fn request_in(c: &ScaledCluster, state: &str) -> Value {
    eventually(&format!("the capacity request {state}"), || async {
        let requests = c.requests().await;
        match requests.as_slice() {
            [r] if r["state"] == state => Some(r.clone()),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exam_beyond_the_fleet_is_scaled_up_prewarmed_and_given_back() {
    // w1 has 2 slots; the hook may add 8 (two workers of 4).
    let c = ScaledCluster::start(2, 8).await;
    let api = &c.api;
    // 8 students, 6 machines prewarmed from 20 s before the start: the
    // prewarm lead (the request's deadline) begins 25 s from now.
    let starts = SystemClock.now().as_millis() + 45_000;
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({
                "examId": "scaled", "name": "Scaled", "students": 8,
                "startsAt": format_rfc3339(Timestamp(starts)),
                "endsAt": format_rfc3339(Timestamp(starts + 20_000)),
                "prewarm": {"count": 6, "leadSec": 20}, "teardownSec": 0,
            })),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["fits"], "with scale-up", "{booked}");

    // The leader asks the hook for the 6 slots missing: two workers, which
    // join before the deadline (the request never went `missing`).
    let joined = request_in(&c, "joined").await;
    assert_eq!(joined["slots"], 6, "{joined}");
    assert_eq!(joined["examIds"], json!(["scaled"]), "{joined}");
    let codes: Vec<String> = joined["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 2, "{joined}");
    assert_eq!(c.running(), codes);
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("capacity-requested"), "{audit}");
    assert!(audit.contains("capacity-joined"), "{audit}");
    assert!(!audit.contains("capacity-missing"), "{audit}");
    let calendar = api.get("/api/vdi/exams/scaled").await;
    assert_eq!(calendar["fits"], true, "the fleet holds it now: {calendar}");

    // At the lead the exam is prewarmed, on the hook's workers too (w1
    // alone has room for 2 machines).
    let figures = eventually("the exam prewarmed", || async {
        let f = api.get("/api/vdi/exams/scaled").await;
        (f["figures"]["prewarm"]["readinessPercent"] == 100).then_some(f)
    })
    .await;
    let per_worker = &figures["figures"]["prewarm"]["workers"];
    let on_hook: u64 = codes
        .iter()
        .map(|w| per_worker[w]["ready"].as_u64().unwrap_or(0))
        .sum();
    assert!(on_hook >= 4, "{figures}");

    // After the exam: drained, stopped by the hook, removed.
    let released = eventually_within(
        "the capacity given back",
        Duration::from_secs(120),
        || async {
            let requests = c.requests().await;
            (requests.len() == 1 && requests[0]["state"] == "released").then(|| requests[0].clone())
        },
    )
    .await;
    assert_eq!(released["workers"], joined["workers"], "{released}");
    assert_eq!(c.running(), Vec::<String>::new());
    let workers = api.get("/api/vdi/workers").await.to_string();
    for code in &codes {
        assert!(
            !workers.contains(code.as_str()),
            "{code} still listed: {workers}"
        );
    }
    assert!(workers.contains("\"w1\""), "{workers}");
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("capacity-released"), "{audit}");
    // Every replica exports the requests by state.
    let metrics = crate::common::http()
        .get(format!("{}/metrics", c.cp.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "vdi_capacity_requests{state=\"released\"} 1",
        "vdi_capacity_requests{state=\"missing\"} 0",
        "vdi_capacity_request_slots{state=\"released\"} 6",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_drain_is_fired_by_the_leader_at_its_time() {
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = &cluster.api;
    let at = in_ms(3_000);
    let (status, scheduled) = api
        .admin(
            Method::POST,
            "/api/vdi/workers/w1/scheduled-drains",
            Some(json!({"at": at, "reason": "kernel update"})),
        )
        .await;
    assert_eq!(status, 201, "{scheduled}");
    assert_eq!(scheduled["state"], "pending", "{scheduled}");
    assert_eq!(api.worker("w1").await["isDraining"], false);

    // At its time the leader drains w1 (it runs nothing: drained at once).
    let drained = eventually("w1 drained by the scheduled drain", || async {
        let w = api.worker("w1").await;
        (w["drainStatus"] == "drained").then_some(w)
    })
    .await;
    assert_eq!(drained["isDraining"], true, "{drained}");
    eventually("the worker to know it drains", || async {
        (cluster.worker("w1").status().await["admin"]["isDraining"] == true).then_some(())
    })
    .await;
    // Fired once: no longer pending, and one entry in the audit trail.
    let open = api.get("/api/vdi/scheduled-drains").await;
    assert_eq!(open["drains"], json!([]), "{open}");
    let audit = api.get("/api/vdi/audit").await;
    let fired: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "scheduled-drain")
        .collect();
    assert_eq!(fired.len(), 1, "{audit}");
    assert_eq!(api.worker("w2").await["isDraining"], false);
}
