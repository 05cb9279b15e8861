//! A deployment moved between stores with the real binary: a store's
//! contents go memory → Redis → PostgreSQL → memory through `vdi-cluster
//! store export` and `store import`, and every dump along the way is the
//! same (nothing lost, nothing added: capacity requests and scheduled
//! drains included). An import into a store that holds something is
//! refused unless `--merge`, a dump of the previous format is still
//! imported, and a dump that does not hold together is refused naming
//! what is wrong, with nothing written.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::testkit::conformance::fill_every_part;
use vdi_cluster_core::transfer::{ImportMode, export, import};
use vdi_cluster_core::{MemoryStore, Store, Timestamp};
use vdi_cluster_protocol::dump::{FORMAT_VERSION, StoreDump};

use crate::common::BIN;
use crate::pg_database::PgDatabase;
use crate::redis_prefix::RedisPrefix;

const STICKY: Duration = Duration::from_secs(21_600);

/// Runs `vdi-cluster store ARGS` with `input` on standard input.
fn store(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("store")
        .args(args)
        .env_remove("VDI_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vdi-cluster starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("the dump is written");
    child.wait_with_output().expect("vdi-cluster ends")
}

fn ok(output: Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "vdi-cluster store failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "expected a refusal");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The dump in `bytes`, its export time left out of the comparison.
fn dump(bytes: &[u8]) -> StoreDump {
    let mut dump = StoreDump::parse(bytes).expect("a valid dump");
    dump.exported_at = Timestamp(0);
    dump
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_moves_from_memory_through_redis_and_postgres_and_back() {
    let (Some(redis), Some(pg)) = (RedisPrefix::new().await, PgDatabase::new().await) else {
        return;
    };
    let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
    fill_every_part(&source).await;
    let first = StoreDump::new(export(source.as_ref()).await.unwrap(), Timestamp(0));
    assert_eq!(
        (
            first.capacity_requests.len(),
            first.scheduled_drains.len(),
            first.disruptions.len()
        ),
        (2, 2, 3),
        "every part, the disruption ledger with it"
    );
    let text = serde_json::to_vec(&first).unwrap();

    let redis_args = [
        "--store",
        redis.url.as_str(),
        "--redis-prefix",
        redis.prefix.as_str(),
    ];
    ok(store(&[&["import"][..], &redis_args].concat(), &text));
    let from_redis = ok(store(&[&["export"][..], &redis_args].concat(), b""));
    assert_eq!(dump(&from_redis), first, "memory → Redis");

    let pg_args = ["--store", pg.url.as_str()];
    ok(store(&[&["import"][..], &pg_args].concat(), &from_redis));
    let from_pg = ok(store(&[&["export"][..], &pg_args].concat(), b""));
    assert_eq!(dump(&from_pg), first, "Redis → PostgreSQL");

    let back: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let contents = dump(&from_pg).into_contents();
    import(back.as_ref(), &contents, ImportMode::IntoEmpty, STICKY)
        .await
        .unwrap();
    let last = StoreDump::new(export(back.as_ref()).await.unwrap(), Timestamp(0));
    assert_eq!(last, first, "PostgreSQL → memory");

    let again = store(&[&["import"][..], &pg_args].concat(), &from_redis);
    let message = refused(&again);
    assert!(
        message.contains("not empty") && message.contains("workers"),
        "{message}"
    );
    let merged = ok(store(
        &[&["import", "--merge"][..], &pg_args].concat(),
        &from_redis,
    ));
    assert!(
        merged.is_empty(),
        "an import writes nothing on standard output"
    );
    assert_eq!(
        dump(&ok(store(&[&["export"][..], &pg_args].concat(), b""))),
        first,
        "a merge of the same dump adds nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_that_does_not_hold_together_is_refused_naming_the_field() {
    let Some(redis) = RedisPrefix::new().await else {
        return;
    };
    let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
    fill_every_part(&source).await;
    let mut value = serde_json::to_value(StoreDump::new(
        export(source.as_ref()).await.unwrap(),
        Timestamp(0),
    ))
    .unwrap();
    let args = [
        "import",
        "--store",
        redis.url.as_str(),
        "--redis-prefix",
        redis.prefix.as_str(),
    ];

    let mut finished = value.clone();
    finished["scheduledDrains"][0]["state"] = serde_json::json!({"is": "done", "at": 1});
    let message = refused(&store(&args, finished.to_string().as_bytes()));
    assert!(message.contains("scheduledDrains[0].state"), "{message}");
    let mut twice = value.clone();
    twice["capacityRequests"][1]["id"] = twice["capacityRequests"][0]["id"].clone();
    let message = refused(&store(&args, twice.to_string().as_bytes()));
    assert!(message.contains("capacityRequests[1].id"), "{message}");

    value["dispatches"][1]["worker"] = serde_json::json!("w-gone");
    let message = refused(&store(&args, value.to_string().as_bytes()));
    assert!(message.contains("dispatches[1].worker"), "{message}");
    value["formatVersion"] = serde_json::json!(7);
    let message = refused(&store(&args, value.to_string().as_bytes()));
    assert!(message.contains("formatVersion"), "{message}");

    let export_args = [
        "export",
        "--store",
        redis.url.as_str(),
        "--redis-prefix",
        redis.prefix.as_str(),
    ];
    let empty = dump(&ok(store(&export_args, b"")));
    assert!(
        empty.workers.is_empty() && empty.audit.is_empty(),
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dump_of_the_previous_format_is_still_imported() {
    let Some(pg) = PgDatabase::new().await else {
        return;
    };
    let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
    fill_every_part(&source).await;
    let current = StoreDump::new(export(source.as_ref()).await.unwrap(), Timestamp(0));
    let mut value = serde_json::to_value(&current).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("capacityRequests");
    object.remove("scheduledDrains");
    object.remove("disruptions");
    object.remove("rehearsals");
    object.insert("formatVersion".into(), serde_json::json!(1));

    let args = ["--store", pg.url.as_str()];
    ok(store(
        &[&["import"][..], &args].concat(),
        value.to_string().as_bytes(),
    ));
    let moved = dump(&ok(store(&[&["export"][..], &args].concat(), b"")));
    assert_eq!(
        moved.format_version, FORMAT_VERSION,
        "exported in the current format"
    );
    assert!(moved.capacity_requests.is_empty() && moved.scheduled_drains.is_empty());
    assert!(moved.disruptions.is_empty() && moved.rehearsals.is_empty());
    assert_eq!(
        StoreDump {
            capacity_requests: current.capacity_requests.clone(),
            scheduled_drains: current.scheduled_drains.clone(),
            disruptions: current.disruptions.clone(),
            rehearsals: current.rehearsals.clone(),
            ..moved
        },
        current,
        "every part format 1 has is carried"
    );
}
