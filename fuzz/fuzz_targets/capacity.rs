//! Fuzz target: `vdi_cluster_core::testkit::fuzzing::capacity`.
//!
//! Run with: `cargo fuzz run capacity` (from `fuzz/`). A crashing input, once
//! fixed, is copied into `fuzz/regressions/capacity/`, which a normal test replays.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdi_cluster_core::testkit::fuzzing::capacity(data);
});
