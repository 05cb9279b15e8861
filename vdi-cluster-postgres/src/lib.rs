//! PostgreSQL backend of vdi-cluster (in progress).
