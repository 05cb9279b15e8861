//! Replays every committed fuzz input (`fuzz/regressions/<target>/*`)
//! through the same entry points the fuzz targets use.

use std::path::Path;

use vdi_cluster_core::testkit::fuzzing;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(replayed > 0, "no inputs in {}", dir.display());
}

#[test]
fn capacity_inputs() {
    replay("capacity", fuzzing::capacity);
}

#[test]
fn identifier_inputs() {
    replay("identifiers", fuzzing::identifiers);
}

#[test]
fn ranking_inputs() {
    replay("ranking", fuzzing::ranking);
}
