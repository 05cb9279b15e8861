//! Fuzz target: `vdi_cluster_core::testkit::fuzzing::ranking`.
//!
//! Run with: `cargo fuzz run ranking` (from `fuzz/`). A crashing input, once
//! fixed, is copied into `fuzz/regressions/ranking/`, which a normal test replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdi_cluster_core::testkit::fuzzing::ranking(data);
});
