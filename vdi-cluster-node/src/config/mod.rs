//! `vdi-cluster worker` options: the flags ([`WorkerArgs`], in `args`;
//! the shared tokens, [`TokenArgs`], in `tokens`, and the TLS flags,
//! [`TlsArgs`], in `tls`, which `serve` takes too, and the exam desktops'
//! network policy, [`NetworkPolicyArgs`], in `network`), the source systems'
//! variable names accepted for ours (in `aliases`, for `serve` too), and
//! their resolution into a [`WorkerConfig`] (in `resolve`).

mod aliases;
mod args;
mod network;
mod resolve;
mod tls;
mod tokens;

pub use aliases::{
    AliasCommand, AliasValue, Conversion, ENV_ALIASES, EnvAlias, resolve_aliases, with_aliases,
};
pub use args::{ProvisionerKind, WorkerArgs};
pub use network::NetworkPolicyArgs;
pub use resolve::{
    CapacityConfig, ConfigError, DEFAULT_PORT, DEFAULT_VM_CPUS, DEFAULT_VM_MEMORY_MB,
    ProvisionerConfig, WorkerConfig, check_base_url, check_base_urls,
};
pub use tls::TlsArgs;
pub use tokens::TokenArgs;
