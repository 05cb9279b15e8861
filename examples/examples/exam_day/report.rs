//! The closing table and the day's checks.

use std::collections::BTreeMap;

use vdi_cluster_core::events::EventKind;

use crate::day::Day;

/// Prints each worker's part of the day and checks that everyone was
/// placed and no worker ever ran more sessions than it has slots.
pub(crate) async fn finish(day: &Day, expected: u32) {
    let report = day
        .leader()
        .operations()
        .reconcile()
        .await
        .expect("reconcile");
    day.say(format!(
        "final reconcile: counter drift found: {}",
        report.drift.len()
    ));
    day.summary().await;

    println!(
        "\n{:<16} {:<10} {:>5} {:>11} {:>14}",
        "worker", "status", "slots", "peak in use", "sessions moved"
    );
    let mut moved: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for e in day.events.events() {
        if let EventKind::SessionMigrated { from, to, .. } = e.kind {
            moved.entry(from.to_string()).or_default().0 += 1;
            moved.entry(to.to_string()).or_default().1 += 1;
        }
    }
    let views = day
        .leader()
        .operations()
        .list_workers(&Default::default())
        .await
        .expect("list");
    let mut over = Vec::new();
    for v in &views {
        let (out, inn) = moved.get(v.id().as_str()).copied().unwrap_or_default();
        let moves = match (out, inn) {
            (0, 0) => String::new(),
            (out, 0) => format!("{out} out"),
            (0, inn) => format!("{inn} in"),
            (out, inn) => format!("{out} out, {inn} in"),
        };
        let peak = day.peak.get(v.id()).copied().unwrap_or_default();
        if peak > v.max_sessions as usize {
            over.push(v.id().clone());
        }
        println!(
            "{:<16} {:<10} {:>5} {:>11} {:>14}",
            v.id().as_str(),
            v.status.name(),
            v.max_sessions,
            peak,
            moves
        );
    }
    let summary = day.leader().operations().summary().await.expect("summary");
    let placed = day.placed;
    println!(
        "\nchecks: {placed}/{expected} students placed, workers over their slots: {}, sessions left: {}, drift: {}",
        over.len(),
        summary.total_active_sessions,
        report.drift.len()
    );
    assert_eq!(placed, expected, "everyone placed");
    assert!(over.is_empty(), "over-allocated: {over:?}");
    assert_eq!(summary.total_active_sessions, 0, "every desktop released");
    assert!(report.drift.is_empty(), "no counter drift");
}
