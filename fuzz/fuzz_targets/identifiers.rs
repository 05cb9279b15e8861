//! Fuzz target: `vdi_cluster_core::testkit::fuzzing::identifiers`.
//!
//! Run with: `cargo fuzz run identifiers` (from `fuzz/`). A crashing input, once
//! fixed, is copied into `fuzz/regressions/identifiers/`, which a normal test replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdi_cluster_core::testkit::fuzzing::identifiers(data);
});
