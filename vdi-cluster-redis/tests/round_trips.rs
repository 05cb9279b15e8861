//! Round trips per operation, as stated in the crate docs: counted by the
//! store's transport wrapper, and cross-checked with the server's own
//! `INFO commandstats` on a private `redis-server`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::pacing::{PermitRequest, PermitReturn, StartPermits, StartSample};
use vdi_cluster_core::store::Reservation;
use vdi_cluster_core::testkit::{
    SimulatedWorkers, heartbeat_with_slots, request, reserve_and_confirm, worker_record,
};
use vdi_cluster_core::{
    ClusterService, Dispatch, DispatchStore, Registry, SessionKey, Timestamp, WorkerId,
};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis;
use vdi_cluster_redis::testkit::PrivateRedis;

/// Calls per command since the server started.
async fn commandstats(url: &str) -> HashMap<String, u64> {
    let mut conn = common::raw(url).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>, cmd: &str) -> u64 {
    after.get(cmd).copied().unwrap_or(0) - before.get(cmd).copied().unwrap_or(0)
}

async fn allocate(store: &RedisStore, key: &SessionKey, worker: &WorkerId) -> Dispatch {
    let request = request(key, worker, Timestamp(1));
    reserve_and_confirm(store, &request, Timestamp(2), Duration::from_secs(60)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocate_release_and_heartbeat_round_trips() {
    let Some(server) = PrivateRedis::start(&["--appendonly", "no"]) else {
        return;
    };
    let url = server.url();
    let store = RedisStore::builder(&url).connect().await.unwrap();
    let w = worker_record("w-rt", 100, 0);
    store.put_worker(&w, None).await.unwrap();

    // Warm up: the first use of each script loads it (NOSCRIPT, SCRIPT
    // LOAD, EVALSHA again); from then on each call is one EVALSHA.
    let warm = SessionKey::parse("exam", "warm-up").unwrap();
    let d = allocate(&store, &warm, &w.id).await;
    store.release(&warm, Some(d.id), None, None).await.unwrap();

    // Allocate = reserve + confirm: 2 round trips, 2 EVALSHA.
    let key = SessionKey::parse("exam", "student").unwrap();
    let (rt, stats) = (store.round_trips(), commandstats(&url).await);
    let d = allocate(&store, &key, &w.id).await;
    let after = commandstats(&url).await;
    assert_eq!(store.round_trips() - rt, 2, "allocate");
    assert_eq!(delta(&stats, &after, "evalsha"), 2);
    assert_eq!(delta(&stats, &after, "eval"), 0);
    assert_eq!(delta(&stats, &after, "script|load"), 0);

    // A paced allocation that finds a free permit: the permit is taken by
    // the reserve and given back, with its sample, by the confirm — the
    // same 2 round trips, 2 EVALSHA.
    let paced = SessionKey::parse("exam", "paced").unwrap();
    let mut asked = request(&paced, &w.id, Timestamp(1));
    asked.permit = Some(PermitRequest {
        limit: 4,
        now: Timestamp(1),
        until: Timestamp(60_000),
    });
    let (rt, stats) = (store.round_trips(), commandstats(&url).await);
    let Reservation::Reserved {
        dispatch: reserved,
        permit: Some(1),
        ..
    } = store.reserve(&asked).await.unwrap()
    else {
        panic!("reserved with a permit");
    };
    let given = PermitReturn {
        worker: w.id.clone(),
        sample: Some(StartSample {
            millis: 40,
            in_flight: 1,
        }),
        keep: 50,
    };
    store
        .confirm(
            &paced,
            reserved.id,
            None,
            Timestamp(2),
            Duration::from_secs(60),
            Some(&given),
        )
        .await
        .unwrap()
        .expect("confirmed");
    let after = commandstats(&url).await;
    assert_eq!(store.round_trips() - rt, 2, "paced allocate");
    assert_eq!(delta(&stats, &after, "evalsha"), 2);
    assert_eq!(delta(&stats, &after, "eval"), 0);
    let queue = store.start_queue(&w.id, Timestamp(2)).await.unwrap();
    assert!(queue.held.is_empty(), "the permit is given back");
    assert_eq!(queue.samples.len(), 1, "with its sample");

    // Release: 1 round trip, 1 EVALSHA.
    let (rt, stats) = (store.round_trips(), commandstats(&url).await);
    store
        .release(&key, Some(d.id), None, None)
        .await
        .unwrap()
        .expect("released");
    let after = commandstats(&url).await;
    assert_eq!(store.round_trips() - rt, 1, "release");
    assert_eq!(delta(&stats, &after, "evalsha"), 1);

    // Heartbeat at the store = read the worker + compare-and-set it: 2
    // round trips (one MULTI/EXEC block, one EVALSHA).
    let (rt, stats) = (store.round_trips(), commandstats(&url).await);
    let snap = store.worker(&w.id).await.unwrap().expect("registered");
    store
        .put_worker(&snap.record, Some(snap.version))
        .await
        .unwrap();
    let after = commandstats(&url).await;
    assert_eq!(store.round_trips() - rt, 2, "heartbeat");
    assert_eq!(delta(&stats, &after, "evalsha"), 1);
    assert_eq!(delta(&stats, &after, "exec"), 1);

    // The same through the orchestration: a heartbeat of a known worker
    // costs the same 2 round trips.
    let service =
        ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new())).build();
    service
        .fleet()
        .heartbeat(heartbeat_with_slots("w-svc", 4, 0))
        .await
        .unwrap();
    let rt = store.round_trips();
    service
        .fleet()
        .heartbeat(heartbeat_with_slots("w-svc", 4, 1))
        .await
        .unwrap();
    assert_eq!(store.round_trips() - rt, 2, "Fleet::heartbeat");
}
