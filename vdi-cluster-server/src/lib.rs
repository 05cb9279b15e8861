//! Reference server of vdi-cluster (in progress).
