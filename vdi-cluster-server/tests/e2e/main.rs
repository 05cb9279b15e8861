//! End-to-end tests: the built `vdi-cluster` binary as real processes on
//! 127.0.0.1 — a control plane and workers with simulated provisioning —
//! driven through the HTTP API, with real signals (SIGKILL, SIGSTOP,
//! SIGCONT, SIGTERM). Timings are short (heartbeat 1 s, TTL 3 s, offline
//! 10 s, reconcile 1 s); every wait polls with a generous deadline and no
//! test asserts on how long anything took. Children are killed when their
//! guards drop, even on panic.

#![allow(missing_docs, unreachable_pub, dead_code)]

mod allocation;
mod booking;
mod calendar_ops;
mod common;
mod data_loss;
mod demo;
mod drain;
mod duplicate_clicks;
mod failover;
mod fleet_restart;
mod freeze;
mod grpc;
mod install;
mod join;
mod ledger;
mod logs;
mod network_policy;
mod partition;
mod pg_database;
mod prewarm_readiness;
mod redis_prefix;
mod rehearsal;
mod replica_kill;
mod replicas;
mod restart;
mod rotation;
mod session_end;
mod slow_worker;
mod store_failover;
mod store_transfer;
mod tls;
mod waiting_room;
mod webhooks;
