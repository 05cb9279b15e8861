//! `/metrics` read as a scraper reads it (an OpenMetrics parser), the
//! rehearsal series of a booked exam, and the ready-made alert rules and
//! dashboard in `examples/deploy/` checked to name only series the server
//! exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use reqwest::Method;
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::testkit::CheckBehaviour;

use crate::common::{Cred, Setup, TestServer, exam_platform_heartbeat, slots_heartbeat};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(s: &TestServer) -> Exposition {
    let r = s.send(Method::GET, "/metrics", &Cred::None, None).await;
    assert_eq!(r.status, 200);
    parse_openmetrics(&r.text)
        .unwrap_or_else(|e| panic!("/metrics is not OpenMetrics text: {e:?}\n{}", r.text))
}

/// Every sample name a family stands for in a query: a counter's
/// `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge itself.
fn series_names(exposition: &Exposition) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, family) in &exposition.families {
        let suffixes: &[&str] = match family.family_type {
            OpenMetricsType::Counter => &["_total"],
            OpenMetricsType::Histogram => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in suffixes {
            names.insert(format!("{name}{suffix}"));
        }
    }
    names
}

/// A family's sample values by their label values, in label-name order.
fn samples(exposition: &Exposition, family: &str) -> Vec<(Vec<String>, f64)> {
    let family = exposition
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    family
        .iter_samples()
        .map(|s| {
            let value = match &s.value {
                OpenMetricsValue::Gauge(v) | OpenMetricsValue::Unknown(v) => v.as_f64(),
                OpenMetricsValue::Counter(c) => c.value.as_f64(),
                other => panic!("unexpected value {other:?}"),
            };
            (
                s.get_labelset()
                    .unwrap()
                    .iter()
                    .map(|(_, v)| v.to_owned())
                    .collect(),
                value,
            )
        })
        .collect()
}

/// `vdi_…` names in a file of queries (alert rules, a dashboard).
fn queried_names(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("vdi_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - start);
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

/// Now plus `secs`, as RFC 3339 in UTC.
fn in_secs(secs: u64) -> String {
    use vdi_cluster_core::{Clock, SystemClock};
    format_rfc3339(SystemClock.now().plus(std::time::Duration::from_secs(secs)))
}

fn deploy_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/deploy")
        .join(path)
}

async fn busy_server() -> TestServer {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let mut loaded = exam_platform_heartbeat("worker-node-1", "http://127.0.0.1:1", 2);
    loaded["cpuPercent"] = 42.0.into();
    loaded["memoryPercent"] = 50.0.into();
    loaded["diskPercent"] = 10.0.into();
    s.heartbeat(&loaded).await;
    s.heartbeat(&exam_platform_heartbeat(
        "worker-node-2",
        "http://127.0.0.1:1",
        0,
    ))
    .await;
    // A booked exam (starting in an hour), so the per-exam series exist.
    let starts = in_secs(3_600);
    let ends = in_secs(7_200);
    let booked = s
        .send(
            Method::POST,
            "/api/vdi/exams",
            &Cred::Admin,
            Some(&serde_json::json!({"examId": "exam-1", "name": "Exam 1",
                "startsAt": starts, "endsAt": ends, "students": 3,
                "prewarm": {"count": 1}})),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.text);
    assert_eq!(s.allocate("exam-1", "sv-1").await.status, 201);
    let rehearsal = s
        .send(
            Method::POST,
            "/api/vdi/exams/exam-1/rehearsal",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(rehearsal.status, 200, "{}", rehearsal.text);
    let reconcile = s
        .send(
            Method::POST,
            "/api/vdi/workers/reconcile",
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(reconcile.status, 200);
    s
}

#[tokio::test]
async fn metrics_parse_as_openmetrics_with_series_per_worker() {
    let s = busy_server().await;
    let exposition = scrape(&s).await;
    let info = samples(&exposition, "vdi_worker_info");
    assert_eq!(info.len(), 2, "{info:?}");
    let max = samples(&exposition, "vdi_worker_slots_max");
    assert_eq!(max.len(), 2, "{max:?}");
    let used: f64 = samples(&exposition, "vdi_worker_slots_used")
        .iter()
        .map(|(_, v)| v)
        .sum();
    // Two reported by worker-node-1 and the one placed since.
    assert_eq!(used, 3.0);
    let heartbeats = samples(&exposition, "vdi_worker_heartbeats");
    let accepted: f64 = heartbeats
        .iter()
        .filter(|(labels, _)| labels.contains(&"accepted".to_owned()))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(accepted, 2.0, "{heartbeats:?}");
    for histogram in [
        "vdi_allocate_duration_seconds",
        "vdi_heartbeat_duration_seconds",
        "vdi_reconcile_duration_seconds",
        "vdi_worker_call_duration_seconds",
    ] {
        let family = &exposition.families[histogram];
        assert_eq!(
            family.family_type,
            OpenMetricsType::Histogram,
            "{histogram}"
        );
        assert!(family.iter_samples().count() > 0, "{histogram} has samples");
    }
}

#[tokio::test]
async fn a_removed_worker_leaves_no_series() {
    let s = busy_server().await;
    s.heartbeat(&exam_platform_heartbeat(
        "worker-node-3",
        "http://127.0.0.1:1",
        0,
    ))
    .await;
    let has_node_3 = |exposition: &Exposition, family: &str| {
        samples(exposition, family)
            .iter()
            .any(|(labels, _)| labels.contains(&"worker-node-3".to_owned()))
    };
    let before = scrape(&s).await;
    assert!(has_node_3(&before, "vdi_worker_info"));
    let gone = s
        .send(
            Method::POST,
            "/api/vdi/workers/worker-node-3/deregister",
            &Cred::Admin,
            Some(&serde_json::json!({})),
        )
        .await;
    assert!(gone.status < 300, "{}", gone.text);
    let deleted = s
        .send(
            Method::DELETE,
            "/api/vdi/workers/worker-node-3",
            &Cred::Admin,
            None,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.text);
    let after = scrape(&s).await;
    for family in [
        "vdi_worker_info",
        "vdi_worker_slots_max",
        "vdi_worker_heartbeats",
    ] {
        assert!(
            !has_node_3(&after, family),
            "{family} still names worker-node-3"
        );
        assert!(
            !samples(&after, family).is_empty(),
            "{family} keeps the others"
        );
    }
}

#[tokio::test]
async fn alert_rules_and_dashboard_use_only_exported_series() {
    let s = busy_server().await;
    let exported = series_names(&scrape(&s).await);
    for file in [
        "prometheus/vdi-cluster-alerts.yml",
        "grafana/vdi-cluster-exam-day.json",
    ] {
        let queried = queried_names(&deploy_file(file));
        assert!(queried.len() >= 5, "{file} queries few series: {queried:?}");
        let unknown: Vec<_> = queried.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} names series the server does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
}

/// A family's samples of one exam, by their other labels.
fn of_exam(exposition: &Exposition, family: &str, exam: &str) -> Vec<(Vec<String>, f64)> {
    if !exposition.families.contains_key(family) {
        return Vec::new();
    }
    let mut found: Vec<_> = samples(exposition, family)
        .into_iter()
        .filter(|(labels, _)| labels.iter().any(|l| l == exam))
        .map(|(labels, v)| {
            let others: Vec<String> = labels.into_iter().filter(|l| l != exam).collect();
            (others, v)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[tokio::test]
async fn a_rehearsed_exam_exports_its_verdict_and_workers_until_cancelled() {
    let (setup, sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    for code in ["w-m1", "w-m2", "w-m3"] {
        let r = s
            .heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 2, 0))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let body = serde_json::json!({"examId": "exam-m", "name": "Rehearsed",
        "startsAt": in_secs(3_600), "endsAt": in_secs(7_200), "students": 5});
    let booked = s
        .send(Method::POST, "/api/vdi/exams", &Cred::Admin, Some(&body))
        .await;
    assert_eq!(booked.status, 201, "{}", booked.text);
    let scraped = scrape(&s).await;
    assert!(
        of_exam(&scraped, "vdi_exam_rehearsal_go", "exam-m").is_empty(),
        "no series before the first rehearsal"
    );

    let w2 = WorkerId::parse("code", "w-m2").unwrap();
    sim.set_check(&w2, CheckBehaviour::ImageMissing);
    let path = "/api/vdi/exams/exam-m/rehearsal";
    let run = s.send(Method::POST, path, &Cred::Admin, None).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.json["verdict"], "noGo", "4 slots left for 5 students");
    let scraped = scrape(&s).await;
    assert_eq!(
        of_exam(&scraped, "vdi_exam_rehearsal_go", "exam-m"),
        vec![(vec![], 0.0)]
    );
    let by_outcome = |e: &Exposition| -> Vec<(String, f64)> {
        of_exam(e, "vdi_exam_rehearsal_workers", "exam-m")
            .into_iter()
            .map(|(labels, v)| (labels.concat(), v))
            .collect()
    };
    assert_eq!(
        by_outcome(&scraped),
        vec![
            ("failed".into(), 0.0),
            ("imageMissing".into(), 1.0),
            ("ok".into(), 2.0),
            ("slow".into(), 0.0),
        ]
    );
    assert_eq!(
        of_exam(&scraped, "vdi_exam_rehearsal_missing_students", "exam-m"),
        vec![(vec![], run.json["missing"].as_f64().unwrap())],
        "the report's missing"
    );
    assert!(run.json["missing"].as_u64().unwrap() > 0, "{}", run.text);

    sim.set_check(&w2, CheckBehaviour::Passes);
    let again = s
        .send(
            Method::POST,
            &format!("{path}/workers/w-m2"),
            &Cred::Admin,
            None,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let scraped = scrape(&s).await;
    assert_eq!(
        of_exam(&scraped, "vdi_exam_rehearsal_go", "exam-m"),
        vec![(vec![], 1.0)]
    );
    assert_eq!(by_outcome(&scraped)[2], ("ok".into(), 3.0));

    let cancelled = s
        .send(Method::DELETE, "/api/vdi/exams/exam-m", &Cred::Admin, None)
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let scraped = scrape(&s).await;
    for family in [
        "vdi_exam_rehearsal_go",
        "vdi_exam_rehearsal_workers",
        "vdi_exam_rehearsal_missing_students",
    ] {
        assert!(
            of_exam(&scraped, family, "exam-m").is_empty(),
            "{family} outlives the cancel"
        );
    }
}
