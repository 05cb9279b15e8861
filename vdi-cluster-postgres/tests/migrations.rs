//! The schema applies to an empty database, and applying it again changes
//! nothing.

mod common;

use sqlx::{Connection, Row};
use vdi_cluster_core::store::Registry;
use vdi_cluster_postgres::MIGRATOR;

use common::{TestDb, register};
use vdi_cluster_core::testkit::{assert_no_drift, worker_record};

const TABLES: [&str; 16] = [
    "affinity",
    "audit",
    "dispatches",
    "join_tokens",
    "leases",
    "outbox",
    "queue_entries",
    "queue_state",
    "scheduled_actions",
    "start_pacing",
    "start_permits",
    "sticky",
    "webhook_failures",
    "webhooks",
    "worker_credentials",
    "workers",
];

async fn schema_objects(db: &TestDb) -> Vec<String> {
    let mut conn = db.connection().await;
    let rows = sqlx::query(
        "SELECT c.relkind::text || ' ' || c.relname AS object
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'vdi'
         UNION ALL
         SELECT 'f ' || p.proname
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'vdi'
          ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let _ = conn.close().await;
    rows.iter().map(|r| r.get("object")).collect()
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store();
    store.migrate().await.expect("first migration");
    let objects = schema_objects(&db).await;
    for table in TABLES {
        assert!(
            objects.contains(&format!("r {table}")),
            "table vdi.{table} missing: {objects:?}"
        );
    }
    for function in [
        "reserve",
        "compare_and_reserve",
        "confirm",
        "remove_dispatch",
        "delete_worker",
        "repair_worker",
        "adopt",
    ] {
        assert!(
            objects.contains(&format!("f {function}")),
            "function vdi.{function} missing: {objects:?}"
        );
    }

    // Through the migrator: recorded as applied, nothing to do.
    store.migrate().await.expect("second migration");
    // Several replicas starting at once.
    let (one, two) = (db.store(), db.store());
    let (a, b) = tokio::join!(one.migrate(), two.migrate());
    a.expect("concurrent migration");
    b.expect("concurrent migration");

    let mut conn = db.connection().await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, i64::try_from(MIGRATOR.iter().count()).unwrap());

    // And the SQL itself: every file runs again on the full schema without
    // error or change.
    for migration in MIGRATOR.iter() {
        sqlx::raw_sql(&migration.sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("re-running {}: {e}", migration.description));
    }
    let _ = conn.close().await;
    assert_eq!(schema_objects(&db).await, objects);

    // The schema works.
    let record = worker_record("w-migrated", 2, 0);
    register(&store, &record).await;
    assert_no_drift(&store).await;
    db.cleanup().await;
}

#[tokio::test]
async fn migrating_keeps_existing_data() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let store = db.store();
    let record = worker_record("w-kept", 3, 1);
    let version = register(&store, &record).await;
    store.migrate().await.unwrap();
    let snapshot = store
        .worker(&record.id)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(snapshot.record, record);
    assert_eq!(snapshot.version, version);
    db.cleanup().await;
}

#[tokio::test]
async fn credentials_from_before_their_lifecycle_stay_valid() {
    use vdi_cluster_core::credential::{CredentialCheck, Presented};
    use vdi_cluster_core::store::Credentials;
    use vdi_cluster_core::{Timestamp, WorkerId};

    let Some(db) = TestDb::create().await else {
        return;
    };
    const LIFECYCLE: i64 = 20261130000000;
    let mut conn = db.connection().await;
    // The schema as it was, with a worker credential stored as a bare hash.
    for migration in MIGRATOR.iter().filter(|m| m.version < LIFECYCLE) {
        sqlx::raw_sql(&migration.sql)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO vdi.worker_credentials (worker_id, token_hash) VALUES ('w-old', 'abc')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for migration in MIGRATOR.iter().filter(|m| m.version >= LIFECYCLE) {
        sqlx::raw_sql(&migration.sql)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let _ = conn.close().await;
    let store = db.store();
    let stored = store
        .worker_credential(&WorkerId::parse("code", "w-old").unwrap())
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(stored.version, 0);
    assert_eq!(
        stored
            .credential
            .check(Timestamp(u64::MAX - 1), |h| h == "abc"),
        CredentialCheck::Valid(Presented::Current)
    );
    db.cleanup().await;
}
