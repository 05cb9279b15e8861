//! Benchmarks and the load generator of vdi-cluster: shared fixtures.

pub mod fleet;
