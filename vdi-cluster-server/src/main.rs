//! The `vdi-cluster` binary.

fn main() {}
