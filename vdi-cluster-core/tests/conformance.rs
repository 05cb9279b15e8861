//! The conformance suite on the in-memory backend.

use std::sync::Arc;

use async_trait::async_trait;
use vdi_cluster_core::testkit::conformance::StoreFactory;
use vdi_cluster_core::{MemoryStore, Store, WorkerId};

/// Replicas are clones of one store: independent handles, shared state.
struct Memory(MemoryStore);

#[async_trait]
impl StoreFactory for Memory {
    async fn replica(&self) -> Arc<dyn Store> {
        Arc::new(self.0.clone())
    }

    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        self.0.corrupt_dispatched(worker, delta);
        true
    }
}

async fn factory() -> Option<Memory> {
    Some(Memory(MemoryStore::new()))
}

vdi_cluster_core::conformance_tests!(factory());

/// Every case function of the suite (`pub async fn NAME(factory: &impl
/// StoreFactory)` in any file of `src/testkit/conformance/`) is in the
/// macro's list, and every name in the list is such a function: a case
/// cannot be written and then forgotten by the backends.
#[test]
fn the_macro_runs_every_conformance_case() {
    use std::collections::BTreeSet;
    use vdi_cluster_core::testkit::conformance::CASES;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testkit/conformance");
    let mut defined = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("the suite's folder") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).expect("a source file");
            defined.extend(case_functions(&source));
        }
    }
    assert!(defined.len() >= 19, "found only {defined:?} in {dir:?}");

    let listed: BTreeSet<String> = CASES.iter().map(|c| (*c).to_owned()).collect();
    assert_eq!(
        listed.len(),
        CASES.len(),
        "a case is listed twice: {CASES:?}"
    );
    let forgotten: Vec<_> = defined.difference(&listed).collect();
    assert!(
        forgotten.is_empty(),
        "conformance cases not run by conformance_tests!: {forgotten:?}"
    );
    let missing: Vec<_> = listed.difference(&defined).collect();
    assert!(
        missing.is_empty(),
        "conformance_tests! lists cases that are not case functions: {missing:?}"
    );
}

/// Names of the `pub async fn`s in `source` that take a `StoreFactory`
/// (the signature may span lines).
fn case_functions(source: &str) -> Vec<String> {
    source
        .split("pub async fn ")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('(')?;
            let params = rest.split_once(')')?.0;
            params
                .contains("StoreFactory")
                .then(|| name.trim().to_owned())
        })
        .collect()
}
