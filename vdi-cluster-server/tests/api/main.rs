//! HTTP tests of the control plane: a real server on 127.0.0.1 port 0 per
//! test, real HTTP calls, fake workers on their own ports. No test asserts
//! on timing.

#![allow(missing_docs, unreachable_pub, dead_code)]

mod attack;
mod auth_matrix;
mod backends;
mod bad_input;
mod capacity;
mod common;
mod connections;
mod credentials;
mod deploy;
mod exam_network_policy;
mod exams;
mod hostile;
mod hostile_grpc;
mod join;
mod ledger;
mod maintenance;
mod metrics;
mod openapi;
mod ops;
mod pacing;
mod pages;
mod rehearsal;
mod runbook;
mod scheduled;
mod session_end;
mod sessions;
mod stats_cache;
mod takeover;
mod throttle;
mod trust;
mod vms;
mod waiting_room;
mod webhooks;
mod worker_client;
