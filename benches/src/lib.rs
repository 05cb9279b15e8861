//! Benchmarks and the load generator of vdi-cluster.
