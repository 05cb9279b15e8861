//! Runnable examples of vdi-cluster: see `examples/`.
