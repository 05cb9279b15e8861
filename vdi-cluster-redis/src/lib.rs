#![doc = include_str!("../README.md")]

mod audit;
mod capacity;
mod cluster;
mod codec;
mod conn;
mod credentials;
mod dispatch;
mod error;
mod exams;
mod failover;
pub mod keys;
mod lanes;
mod lease;
mod ledger;
mod lost;
mod outbox;
mod permits;
mod recount;
mod registry;
mod rehearsals;
mod scheduled;
mod scripts;
mod sentinel;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod waiting_room;

pub use cluster::{CLUSTER_SCHEME, hash_tagged};
pub use scripts::reserve_script;
pub use sentinel::SENTINEL_SCHEME;

/// The Redis driver this crate is built on, re-exported so callers name
/// the same version (for [`Client`] options, TLS, RESP3).
pub use redis;
/// A configured connection target, for [`RedisStoreBuilder::client`].
pub use redis::Client;
pub use store::{
    DEFAULT_AUDIT_KEPT, DEFAULT_CONNECTION_TIMEOUT, DEFAULT_TIMEOUT, RedisStore, RedisStoreBuilder,
};
