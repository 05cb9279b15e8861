//! Admission with real processes: once the workers' slots are booked, an
//! exam that does not fit is refused with the earliest start at which it
//! would, and booking it at that start is accepted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::exam::{format_rfc3339, parse_rfc3339};

use crate::common::{Api, Cluster, CpOptions};

fn in_minutes(minutes: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from((now + Duration::from_secs(minutes * 60)).as_millis()).unwrap()
}

fn body(id: &str, starts_ms: u64, length_min: u64, students: u32) -> Value {
    json!({
        "examId": id, "name": id,
        "startsAt": format_rfc3339(Timestamp::from_millis(starts_ms)),
        "endsAt": format_rfc3339(Timestamp::from_millis(starts_ms + length_min * 60_000)),
        "students": students,
    })
}

async fn book(api: &Api, body: &Value) -> (StatusCode, Value) {
    api.admin(Method::POST, "/api/vdi/exams", Some(body.clone()))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_booking_suggests_a_start_that_is_then_accepted() {
    let cluster = Cluster::start(&[4, 4], CpOptions::default()).await;
    let api = &cluster.api;
    let summary = api.get("/api/vdi/workers/summary").await;
    let slots = u32::try_from(summary["totalMaxSessions"].as_u64().unwrap()).unwrap();
    assert!(slots > 0, "{summary}");

    // The morning exam takes what the fleet can hold (less the headroom).
    let start = in_minutes(120);
    let mut size = slots;
    while book(api, &body("morning", start, 90, size)).await.0 != StatusCode::CREATED {
        size -= 1;
        assert!(size > 0, "no size of the morning exam was admitted");
    }

    // A second exam at the same time does not fit: 409 with what an
    // organiser needs, and the earliest start at which it would.
    let late = body("late", start, 60, size);
    let (status, refusal) = book(api, &late).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refusal}");
    assert!(refusal["shortfall"].as_u64().unwrap() > 0, "{refusal}");
    let overlapping = refusal["overlapping"].as_array().unwrap();
    assert!(
        overlapping.iter().any(|e| e["examId"] == "morning"),
        "{refusal}"
    );
    let earliest = refusal["earliestStart"]
        .as_str()
        .expect("a suggested start");
    let earliest_ms = parse_rfc3339("earliestStart", earliest)
        .unwrap()
        .as_millis();
    assert!(earliest_ms > start, "{refusal}");

    // Booked at the suggested start, it is accepted and fits.
    let (status, booked) = book(api, &body("late", earliest_ms, 60, size)).await;
    assert_eq!(status, StatusCode::CREATED, "{booked}");
    assert_eq!(booked["fits"], true, "{booked}");
    let calendar = api.get("/api/vdi/exams").await;
    let ids: Vec<&str> = calendar["exams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["examId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["morning", "late"], "{calendar}");
}
