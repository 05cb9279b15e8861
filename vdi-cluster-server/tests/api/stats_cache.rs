//! The cluster statistics, kept per replica for `--stats-cache-sec`: the
//! requests of one window cost one read of the store (counted by
//! `vdi_stats_cache_answers_total`), carry `Cache-Control` with the
//! seconds left and a strong `ETag`, a matching `If-None-Match` is a 304
//! without a body, and a change shows once the window is over.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use vdi_cluster_core::{Clock, ManualClock, SystemClock};

use crate::common::{Cred, Reply, Setup, TestServer, slots_heartbeat};

async fn stats(s: &TestServer, path: &str, if_none_match: Option<&str>) -> Reply {
    let mut req = Cred::Admin.apply(s.request(Method::GET, path));
    if let Some(tag) = if_none_match {
        req = req.header("if-none-match", tag);
    }
    Reply::from(req.send().await.unwrap()).await
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("{name}: {r:?}"))
        .to_str()
        .unwrap()
}

async fn join(s: &TestServer, code: &str) {
    let r = s
        .heartbeat(&slots_heartbeat(code, "http://127.0.0.1:1", 4, 0))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_window_of_requests_costs_one_read_and_a_change_shows_after_it() {
    let (mut setup, _sim) = Setup::memory();
    setup.stats_window = Duration::from_secs(30);
    let clock = ManualClock::new(SystemClock.now());
    let s = TestServer::start_with_clock(setup, Some(Arc::new(clock.clone()))).await;
    let answers = || s.state.metrics().stats_answers();
    join(&s, "w-1").await;

    let first = stats(&s, "/api/vdi/cluster/stats", None).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json["totalWorkers"], 1);
    assert_eq!(header(&first, "cache-control"), "private, max-age=30");
    let etag = header(&first, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(answers(), (0, 1));

    // Within the window: the first answer, whatever changed, from either
    // path; one read of the store in all.
    join(&s, "w-2").await;
    for path in ["/api/vdi/cluster/stats", "/api/vdi/workers/stats"].repeat(2) {
        let again = stats(&s, path, None).await;
        assert_eq!(again.status, 200, "{again:?}");
        assert_eq!(again.text, first.text, "{path}");
        assert_eq!(header(&again, "etag"), etag);
    }
    assert_eq!(answers(), (4, 1));

    // The tag names the body: 304, no body.
    let unchanged = stats(&s, "/api/vdi/cluster/stats", Some(&etag)).await;
    assert_eq!(unchanged.status, 304, "{unchanged:?}");
    assert!(unchanged.text.is_empty(), "{unchanged:?}");
    assert_eq!(header(&unchanged, "etag"), etag);
    clock.advance(Duration::from_secs(10));
    let later = stats(&s, "/api/vdi/workers/stats", Some("\"other\"")).await;
    assert_eq!(later.status, 200);
    assert_eq!(header(&later, "cache-control"), "private, max-age=20");
    assert_eq!(answers(), (6, 1));

    // Past the window: read again, the change shows, the old tag is stale.
    clock.advance(Duration::from_secs(20));
    let fresh = stats(&s, "/api/vdi/cluster/stats", Some(&etag)).await;
    assert_eq!(fresh.status, 200, "{fresh:?}");
    assert_eq!(fresh.json["totalWorkers"], 2);
    assert_ne!(header(&fresh, "etag"), etag);
    assert_eq!(header(&fresh, "cache-control"), "private, max-age=30");
    assert_eq!(answers(), (6, 2));

    // Counted in the metrics.
    let metrics = s.get("/metrics").await.text;
    assert!(
        metrics.contains("vdi_stats_cache_answers_total{result=\"miss\"} 2"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn without_a_window_every_request_reads_the_store() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    join(&s, "w-1").await;
    let first = stats(&s, "/api/vdi/cluster/stats", None).await;
    assert_eq!(header(&first, "cache-control"), "private, no-cache");
    join(&s, "w-2").await;
    let second = stats(&s, "/api/vdi/cluster/stats", None).await;
    assert_eq!(second.json["totalWorkers"], 2);
    let etag = header(&second, "etag").to_owned();
    let unchanged = stats(&s, "/api/vdi/cluster/stats", Some(&etag)).await;
    assert_eq!(unchanged.status, 304, "{unchanged:?}");
    assert_eq!(s.state.metrics().stats_answers(), (0, 3));
    // Still closed by default.
    let anonymous = s
        .request(Method::GET, "/api/vdi/cluster/stats")
        .send()
        .await;
    assert_eq!(anonymous.unwrap().status(), 401);
    s.stop().await;
}
