//! The store wrapper that counts every call per method and the time spent
//! in it: the breakdown behind `vdi-loadgen --breakdown` (it lives in
//! core's testkit, where the service tests count round trips with it too).

pub use vdi_cluster_core::testkit::instrument::{Breakdown, Instrumented, MethodStats};
