//! Exam machines restricted to the exam: the desktops' network policy.
//!
//! The worker's policy comes from the exam platform's variables
//! (`EXAM_RESTRICT_INTERNET`, `EXAM_ALLOWED_DOMAINS`, `EXAM_ALLOWED_CIDRS`,
//! `EXAM_ALLOWED_IPS`, `EXAM_ORIGIN_IP`, `EXAM_FIREWALL_ENFORCE_STRICT`;
//! [`WorkerConfig::network_policy`](crate::config::WorkerConfig)). When it
//! restricts, the provisioning program finds it as JSON in
//! `VDI_NETWORK_POLICY` (the protocol's `NetworkPolicyJson`) on every
//! action, and once it knows a desktop's address runs
//! `vdi-cluster network-rules apply --address ADDR`, which applies the
//! rules of [`rules`] with `nft` (and `remove` when the desktop goes).
//! The sample `examples/deploy/provision.sh` does so; the whole story is
//! in `docs/network-policy.md`.
//!
//! * [`rules`] — the nftables rules of one desktop, pure: what passes,
//!   and the script;
//! * [`command`] — `vdi-cluster network-rules`: reads the policy,
//!   resolves the allowed domains and the node's resolvers, runs `nft`.

pub mod command;
pub mod rules;

pub use command::{NetworkRulesAction, NetworkRulesArgs, run};
pub use rules::{Ruleset, Transport, Verdict, removal, table_name};
