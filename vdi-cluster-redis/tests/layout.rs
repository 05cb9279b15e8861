//! The key layout on a real Redis: the exam platform's names, types and TTLs, and
//! hostile identifiers that can neither forge nor collide with keys.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{keys_under, raw, redis_url, shared_store};
use vdi_cluster_core::testkit::{request, reserve_and_confirm, worker_record};
use vdi_cluster_core::{
    AuditLog, Dispatch, DispatchStore, ExamId, LeaderLease, Registry, SessionKey, Timestamp,
    WorkerId,
};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis;

async fn key_type(url: &str, key: &str) -> String {
    redis::cmd("TYPE")
        .arg(key)
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

async fn pttl(url: &str, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw(url).await)
        .await
        .unwrap()
}

async fn place(store: &RedisStore, key: &SessionKey, worker: &WorkerId) -> Dispatch {
    let request = request(key, worker, Timestamp(10));
    reserve_and_confirm(store, &request, Timestamp(20), Duration::from_secs(21_600)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_key_has_its_type_and_ttl() {
    let Some(store) = shared_store().await else {
        return;
    };
    let (url, p) = (redis_url(), store.prefix().to_owned());
    let w = worker_record("worker-node-2", 4, 0);
    store.put_worker(&w, None).await.unwrap();
    let key = SessionKey::parse("exam-42", "student-7").unwrap();
    place(&store, &key, &w.id).await;
    let lease = store
        .try_acquire("reconcile", "replica-a", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("lease");
    store.save_checkpoint(&lease, "{}").await.unwrap();
    store
        .append_audit(&vdi_cluster_core::store::AuditEntry {
            at: Timestamp(1),
            actor: "admin".into(),
            action: "drain".into(),
            target: "worker-node-2".into(),
            detail: serde_json::Value::Null,
        })
        .await
        .unwrap();

    let expected = [
        (
            format!("{p}:dispatch:exam:exam-42:user:student-7"),
            "hash",
            false,
        ),
        (format!("{p}:sticky:exam:exam-42:worker"), "string", true),
        (format!("{p}:sticky:exam:exam-42:until"), "string", true),
        (format!("{p}:sticky:exam:exam-42:affinity"), "hash", false),
        (format!("{p}:sticky:exam:exam-42:sessions"), "set", false),
        (format!("{p}:worker:worker-node-2"), "hash", false),
        (format!("{p}:workers"), "set", false),
        (format!("{p}:dispatched"), "hash", false),
        (format!("{p}:index:worker-dispatches"), "zset", false),
        (format!("{p}:lease:reconcile"), "hash", true),
        (format!("{p}:lease-token"), "string", false),
        (format!("{p}:checkpoint:reconcile"), "string", false),
        (format!("{p}:audit"), "list", false),
    ];
    let present: BTreeSet<String> = keys_under(&url, &p).await.into_iter().collect();
    let named: BTreeSet<String> = expected.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(present, named, "the crate docs list every key");
    for (k, ty, expires) in &expected {
        assert_eq!(&key_type(&url, k).await, ty, "{k}");
        let ttl = pttl(&url, k).await;
        assert_eq!(ttl > 0, *expires, "{k} ttl {ttl}");
    }
    let sticky: String = redis::cmd("GET")
        .arg(format!("{p}:sticky:exam:exam-42:worker"))
        .query_async(&mut raw(&url).await)
        .await
        .unwrap();
    assert_eq!(
        sticky, "worker-node-2",
        "the exam platform's sticky key holds the worker code"
    );
    common::delete_prefix(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_identifiers_stay_apart_on_the_wire() {
    let Some(store) = shared_store().await else {
        return;
    };
    let (url, p) = (redis_url(), store.prefix().to_owned());
    let w = worker_record("w-hostile", 100, 0);
    store.put_worker(&w, None).await.unwrap();
    let sessions: Vec<SessionKey> = [
        ("a:user:b", "c"),
        ("a", "b:user:c"),
        ("a:user:b:user:c", "d"),
        ("a*", "b"),
        ("a", "*"),
        ("*", "*"),
        ("a?", "[b]"),
        ("100%", "%25"),
        ("100%25", "%"),
        ("exam 1", "user 1"),
        ("Thi cuối kỳ: Toán cao cấp", "Nguyễn Văn A"),
        ("Thi cuoi ky: Toan cao cap", "Nguyen Van A"),
        ("x:affinity", "u"),
        ("x", "u:affinity"),
    ]
    .iter()
    .map(|(e, u)| SessionKey::parse(*e, *u).unwrap())
    .collect();
    for s in &sessions {
        place(&store, s, &w.id).await;
    }

    // Every key on the wire is printable ASCII without spaces, and the
    // dispatch records number exactly the sessions.
    let keys = keys_under(&url, &p).await;
    for k in &keys {
        assert!(k.bytes().all(|b| b.is_ascii_graphic()), "{k}");
    }
    let records: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{p}:dispatch:exam:")))
        .collect();
    assert_eq!(records.len(), sessions.len());
    // One sticky worker and one affinity hash per distinct exam.
    let exams: BTreeSet<&ExamId> = sessions.iter().map(|s| &s.exam_id).collect();
    let affinity = keys.iter().filter(|k| k.ends_with(":affinity")).count();
    assert_eq!(affinity, exams.len());
    for exam in &exams {
        let placement = store.placement(exam, Timestamp(30)).await.unwrap();
        let expected = sessions.iter().filter(|s| &s.exam_id == *exam).count() as u32;
        assert_eq!(placement.affinity.get(&w.id), Some(&expected), "{exam}");
        assert_eq!(placement.sticky.as_ref(), Some(&w.id));
    }
    // A glob character in an id never widens a match: releasing `*`/`*`
    // removes exactly that session.
    let star = SessionKey::parse("*", "*").unwrap();
    assert!(
        store
            .release(&star, None, None, None)
            .await
            .unwrap()
            .is_some()
    );
    for s in sessions.iter().filter(|s| **s != star) {
        assert!(store.dispatch(s).await.unwrap().is_some(), "{s} survived");
    }
    let report = store.recount(false).await.unwrap();
    assert!(report.drift.is_empty(), "{:?}", report.drift);
    common::delete_prefix(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate_stores() {
    let Some(a) = shared_store().await else {
        return;
    };
    let Some(b) = shared_store().await else {
        return;
    };
    let w = worker_record("w-shared-name", 2, 0);
    a.put_worker(&w, None).await.unwrap();
    assert!(b.worker(&w.id).await.unwrap().is_none());
    assert!(b.workers().await.unwrap().is_empty());
    common::delete_prefix(&redis_url(), a.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_scans_page_through_the_index_not_the_keyspace() {
    let Some(store) = shared_store().await else {
        return;
    };
    let url = redis_url();
    // Another application's keys in the same database.
    let foreign = common::test_prefix();
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("SET")
            .arg(format!("{foreign}:k{i}"))
            .arg(1)
            .ignore();
    }
    let () = pipe.query_async(&mut raw(&url).await).await.unwrap();
    let w = worker_record("w-scan", 20, 0);
    store.put_worker(&w, None).await.unwrap();
    let mut placed = BTreeSet::new();
    for i in 0..10 {
        let k = SessionKey::parse("exam", format!("u{i}")).unwrap();
        placed.insert(place(&store, &k, &w.id).await.key);
    }
    let (mut seen, mut pages, mut cursor) = (BTreeSet::new(), 0, None::<String>);
    loop {
        let page = store.scan_dispatches(cursor.as_deref(), 4).await.unwrap();
        pages += 1;
        seen.extend(page.dispatches.into_iter().map(|d| d.key));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, placed);
    assert!(pages <= 4, "10 dispatches in pages of 4 took {pages} pages");
    common::delete_prefix(&url, &foreign).await;
    common::delete_prefix(&url, store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_rejected_before_any_io() {
    let err = RedisStore::builder(redis_url())
        .prefix("has space")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, vdi_cluster_core::Error::Invalid(ref v) if v.field == "prefix"),
        "{err}"
    );
    let err = RedisStore::builder("not a url")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, vdi_cluster_core::Error::Invalid(ref v) if v.field == "url"),
        "{err}"
    );
    let err = RedisStore::builder(redis_url())
        .timeout(Duration::ZERO)
        .connect_lazy()
        .unwrap_err();
    assert!(matches!(err, vdi_cluster_core::Error::Invalid(_)), "{err}");
}
