//! Redis backend of vdi-cluster (in progress).
