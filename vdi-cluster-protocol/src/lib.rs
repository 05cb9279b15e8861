//! # vdi-cluster-protocol
//!
//! The wire format of vdi-cluster, in one place: every JSON body and header
//! name that crosses a process boundary — control plane ↔ node agent
//! ([`node`]), and the error body of seed 004 ([`ErrorBody`]) that every
//! endpoint answers with — how bodies are decoded ([`decode`]), and the
//! credential formats ([`credentials`]).
//!
//! This crate decides the JSON shape; core's types carry none of it. It
//! does no I/O: the control plane (`vdi-cluster-server`), the node agent
//! (`vdi-cluster-node`) and the load generator all use it, and none copies
//! it. Field names are camelCase, exactly as the seeds write them.

pub mod credentials;
pub mod decode;
mod error;
pub mod node;
pub mod node_status;

pub use error::ErrorBody;
pub use node::*;
