//! Every hot query is served by an index at 100,000 dispatches: the plans
//! PostgreSQL picks (custom and generic, as prepared statements get them)
//! contain no sequential scan of `vdi.dispatches`, `vdi.sticky` or
//! `vdi.affinity`. (`vdi.workers` holds one row per node — a few pages —
//! and PostgreSQL rightly reads it whole when that is cheaper.) Run with
//! `--nocapture` to see the plans.

mod common;

use sqlx::{Connection, Executor, PgConnection};
use vdi_cluster_core::store::{DispatchStore, Registry};
use vdi_cluster_core::{DispatchState, Timestamp};

use common::TestDb;
use vdi_cluster_core::testkit::{key, wid, worker_record};

const DISPATCHES: i64 = 100_000;
const WORKERS: i64 = 200;

/// 200 workers, 2,000 exams and 100,000 dispatches, all consistent
/// (counters and affinity match the rows), generated in the database.
const FIXTURE: &str = r#"
INSERT INTO vdi.dispatches (exam_id, user_id, id, worker_id, state, reserved_at, activated_at, record)
SELECT format('exam-%s', i % 2000),
       format('student-%s', i),
       gen_random_uuid(),
       format('w-%s', lpad((i % 200)::text, 3, '0')),
       CASE WHEN i % 50 = 0 THEN 'reserved' WHEN i % 97 = 0 THEN 'orphaned' ELSE 'active' END,
       1700000000000 + i,
       CASE WHEN i % 50 = 0 THEN NULL ELSE 1700000000000 + i END,
       jsonb_build_object(
           'key', jsonb_build_object('examId', format('exam-%s', i % 2000),
                                     'userId', format('student-%s', i)),
           'id', gen_random_uuid(),
           'worker', format('w-%s', lpad((i % 200)::text, 3, '0')),
           'state', CASE WHEN i % 50 = 0 THEN 'reserved' WHEN i % 97 = 0 THEN 'orphaned' ELSE 'active' END,
           'reservedAt', 1700000000000 + i,
           'activatedAt', CASE WHEN i % 50 = 0 THEN NULL ELSE 1700000000000 + i END,
           'workerBootId', NULL,
           'workerSeq', NULL,
           'session', NULL)
  FROM generate_series(0, 99999) AS i;

UPDATE vdi.workers w
   SET dispatched = c.n
  FROM (SELECT worker_id, count(*) AS n FROM vdi.dispatches GROUP BY worker_id) c
 WHERE c.worker_id = w.id;

INSERT INTO vdi.affinity (exam_id, worker_id, sessions)
SELECT exam_id, worker_id, count(*) FROM vdi.dispatches GROUP BY exam_id, worker_id;

INSERT INTO vdi.sticky (exam_id, worker_id, expires_at)
SELECT format('exam-%s', e), format('w-%s', lpad((e % 200)::text, 3, '0')), 1800000000000
  FROM generate_series(0, 1999) AS e;
"#;

/// 200 workers of 1,000 slots: the record bound as $1, with its id
/// replaced.
const WORKER_FIXTURE: &str = "
INSERT INTO vdi.workers (id, record, version, max_sessions, reported_active, accepting, dispatched)
SELECT format('w-%s', lpad(w::text, 3, '0')),
       jsonb_set($1, '{id}', to_jsonb(format('w-%s', lpad(w::text, 3, '0')))),
       1, 1000, 0, true, 0
  FROM generate_series(0, 199) AS w";

/// A hot query: its SQL as the store sends it, the parameter types and
/// sample values to plan it with.
struct Hot {
    name: &'static str,
    sql: &'static str,
    types: &'static str,
    args: &'static str,
}

const HOT: &[Hot] = &[
    Hot {
        name: "dispatch of a session (also the key lookups inside vdi.reserve, \
               vdi.remove_dispatch, vdi.confirm)",
        sql: include_str!("../sql/dispatch.sql"),
        types: "text, text",
        args: "'exam-347', 'student-12347'",
    },
    Hot {
        name: "worker_dispatches",
        sql: include_str!("../sql/worker_dispatches.sql"),
        types: "text, bigint",
        args: "'w-042', 200",
    },
    Hot {
        name: "scan_dispatches, first page",
        sql: include_str!("../sql/scan_first.sql"),
        types: "bigint",
        args: "200",
    },
    Hot {
        name: "scan_dispatches, later page",
        sql: include_str!("../sql/scan_after.sql"),
        types: "text, text, bigint",
        args: "'exam-1021', 'student-51021', 200",
    },
    Hot {
        name: "dispatches_by_age (stuck reservations)",
        sql: include_str!("../sql/dispatches_by_age.sql"),
        types: "text, bigint, bigint",
        args: "'reserved', 1700000050000, 200",
    },
    Hot {
        name: "placement (sticky + affinity)",
        sql: include_str!("../sql/placement.sql"),
        types: "text, bigint",
        args: "'exam-3', 1750000000000",
    },
    Hot {
        name: "mark_orphaned",
        sql: include_str!("../sql/mark_orphaned.sql"),
        types: "text, text, uuid, text, text, bigint",
        args: "'exam-347', 'student-12347', '00000000-0000-0000-0000-000000000000', \
               NULL, NULL, NULL",
    },
    Hot {
        name: "count of a worker's rows (inside vdi.delete_worker, vdi.repair_worker)",
        sql: "SELECT count(*) FROM vdi.dispatches d WHERE d.worker_id = $1",
        types: "text",
        args: "'w-042'",
    },
    Hot {
        name: "affinity of a worker (inside vdi.repair_worker)",
        sql: "SELECT af.exam_id, af.sessions FROM vdi.affinity af WHERE af.worker_id = $1",
        types: "text",
        args: "'w-042'",
    },
];

/// The plan of `hot` as text, custom or generic.
async fn plan(conn: &mut PgConnection, hot: &Hot, generic: bool) -> String {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    conn.execute(format!("SET plan_cache_mode = {mode}").as_str())
        .await
        .unwrap();
    conn.execute(format!("PREPARE hot({}) AS {}", hot.types, hot.sql).as_str())
        .await
        .unwrap_or_else(|e| panic!("PREPARE {}: {e}", hot.name));
    let lines: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE hot({})", hot.args))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    conn.execute("DEALLOCATE hot").await.unwrap();
    lines.join("\n")
}

#[tokio::test]
async fn hot_queries_use_indexes_at_100k_dispatches() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let mut conn = db.connection().await;
    sqlx::query(WORKER_FIXTURE)
        .bind(sqlx::types::Json(worker_record("w-000", 1000, 0)))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(FIXTURE).execute(&mut conn).await.unwrap();
    // Statistics and the visibility map, as autovacuum would leave them
    // (VACUUM cannot run inside the fixture's implicit transaction).
    conn.execute("VACUUM ANALYZE vdi.workers, vdi.dispatches, vdi.affinity, vdi.sticky")
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM vdi.dispatches")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, DISPATCHES);
    // mark_orphaned is an UPDATE: plan it without running it.
    conn.execute("BEGIN").await.unwrap();
    for hot in HOT {
        for generic in [false, true] {
            let text = plan(&mut conn, hot, generic).await;
            println!(
                "-- {} ({} plan)\n{}\n",
                hot.name,
                if generic { "generic" } else { "custom" },
                text
            );
            assert!(
                !text.contains("Seq Scan"),
                "{} ({}): sequential scan\n{text}",
                hot.name,
                if generic { "generic" } else { "custom" }
            );
            assert!(
                text.contains("Index"),
                "{}: no index used\n{text}",
                hot.name
            );
        }
    }
    conn.execute("ROLLBACK").await.unwrap();
    let _ = conn.close().await;

    // And the store reads the generated rows through those queries.
    let store = db.store();
    assert_eq!(
        store.workers().await.unwrap().len(),
        usize::try_from(WORKERS).unwrap()
    );
    let k = key("exam-347", "student-12347");
    assert_eq!(store.dispatch(&k).await.unwrap().unwrap().key, k);
    assert_eq!(
        store
            .worker_dispatches(&wid("w-042"), 1000)
            .await
            .unwrap()
            .len(),
        500
    );
    let page = store.scan_dispatches(None, 200).await.unwrap();
    assert_eq!(page.dispatches.len(), 200);
    let next = store
        .scan_dispatches(page.next.as_deref(), 200)
        .await
        .unwrap();
    assert!(next.dispatches[0].key > page.dispatches[199].key);
    let stuck = store
        .dispatches_by_age(DispatchState::Reserved, Timestamp(1_700_000_050_000), 200)
        .await
        .unwrap();
    assert_eq!(stuck.len(), 200);
    let report = store.recount(false).await.unwrap();
    assert!(report.drift.is_empty(), "{:?}", report.drift);
    // 200 workers, and 2,000 (exam, worker) pairs: i % 2000 fixes i % 200.
    assert_eq!(report.counters_checked, 200 + 2000);
    db.cleanup().await;
}
