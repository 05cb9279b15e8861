//! Benchmarks and the load generator of vdi-cluster.
//!
//! The criterion benches (`benches/domain.rs`) measure the pure domain and
//! the in-memory backend. The load generator `vdi-loadgen` drives whole
//! control planes — several [`ClusterService`](vdi_cluster_core::ClusterService)
//! replicas, each over its own store handle, calling simulated workers —
//! through named scenarios:
//!
//! * [`surge`](surge::surge): every student allocates at once;
//! * [`heartbeat`](heartbeat::heartbeats): every worker heartbeats as fast
//!   as it can;
//! * [`steady`](steady::steady): an exam in progress, with and without
//!   reconcile running;
//! * [`gameday`](gameday::game_day): the whole system — `serve` replicas
//!   and worker agents as real processes — through an exam day's faults,
//!   checked at the end;
//! * [`cover`](cover::cover): a reconcile pass covering every dispatch
//!   (100,000 by default), in steps resumed from its cursor;
//! * [`failover`](failover::failover): the store's primary killed during
//!   an exam-start surge, on the game day's processes and a store
//!   deployment of the run's own (the store crates' `testkit`);
//!
//! and measures, in the same run, the baselines of [`baseline`]: the
//! backend's raw ceiling and the naive approach. Every run ends with a
//! recount ([`audit`]) of dispatch records against slots.
//!
//! `surge` and `heartbeat` are written once against a [`target::Target`]:
//! replicas in this process ([`target::InProcess`], over [`cluster`]), or
//! real `vdi-cluster serve` processes ([`http`]) calling the node crate's
//! worker-side API, with `vdi-cluster-protocol`'s bodies on the wire. The
//! outcome of one allocation and its tally are in [`alloc`]; [`driver`]
//! runs the closed loop.
//!
//! Runs on Redis use a random key prefix and on PostgreSQL a fresh
//! database, both removed afterwards ([`deploy`]). [`cpu`] accounts CPU per
//! operation on every side, and [`instrument`] counts store calls
//! (`--breakdown`).

pub mod alloc;
pub mod audit;
pub mod baseline;
pub mod cluster;
pub mod cover;
pub mod cpu;
pub mod deploy;
pub mod driver;
pub mod failover;
pub mod fleet;
pub mod gameday;
pub mod heartbeat;
pub mod http;
pub mod instrument;
pub mod latency;
pub mod seat;
pub mod steady;
pub mod storm;
pub mod surge;
pub mod table;
pub mod target;
