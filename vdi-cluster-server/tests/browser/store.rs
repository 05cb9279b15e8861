//! The store's primary on the overview, through a failover. The control
//! plane uses a PostgreSQL primary and its streaming standby started by
//! the test (`postgres://standby,primary/…`). The overview names the
//! primary (in Vietnamese); the primary is killed and, once the leader's
//! steps have failed for a while, the standby promoted. The overview then
//! names the promoted server, and the recent events show one
//! `backendDegraded` with how long the store was unavailable (in
//! English).

use std::time::Duration;

use vdi_cluster_postgres::testkit::StandbyPair;

use crate::common::{Cluster, CpOptions, admin_token};
use crate::harness::Browser;

/// Longer than the leader's tick (1 s in these tests) plus the store's wait for a
/// connection (5 s): the leader's steps surely fail while the primary is
/// gone.
const OUTAGE: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_follows_the_store_primary_and_shows_the_outage() {
    let Some(mut b) = Browser::start("store", "vi-VN").await else {
        return;
    };
    let Some(mut pair) = StandbyPair::start().await else {
        return;
    };
    let options = CpOptions {
        store: Some(pair.url()),
        ..CpOptions::default()
    };
    let cluster = Cluster::start(&[4], options).await;
    let url = &cluster.cp.url;

    b.goto(&format!("{url}/admin/")).await;
    b.sign_in(&admin_token()).await;
    let first = pair.primary.name();
    b.wait_text("#overview-store", "the primary, in Vietnamese", |t| {
        t.contains("PostgreSQL") && t.contains(&format!("máy chủ chính: {first}"))
    })
    .await;
    b.check_accessibility("overview with the store (vi)").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
    b.screenshot("store-primary-vi").await;

    b.js(
        "const s = document.getElementById('lang'); s.value = 'en'; \
          s.dispatchEvent(new Event('change')); return null;",
    )
    .await;
    pair.primary.kill();
    tokio::time::sleep(OUTAGE).await;
    pair.promote().await;

    let promoted = pair.standby.name();
    b.wait_text("#overview-store", "the promoted primary", |t| {
        t.contains(&format!("primary: {promoted}"))
    })
    .await;
    let events = b
        .wait_text("#recent-events", "the outage, once", |t| {
            t.contains("store unavailable for")
        })
        .await;
    assert_eq!(
        events.matches("store unavailable for").count(),
        1,
        "one outage, one event: {events}"
    );
    let seconds: f64 = events
        .split("store unavailable for ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the outage's duration: {events}"));
    assert!(seconds > 0.0, "the outage has a duration: {events}");
    b.check_accessibility("overview after a failover").await;
    b.screenshot("store-failed-over").await;

    // While the primary was gone the page's reads were answered 503, which
    // the browser logs as failed loads; nothing else is logged as an error.
    let errors: Vec<String> = b
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !(e.contains("Failed to load resource") && e.contains("503")))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
    b.quit().await;
}
