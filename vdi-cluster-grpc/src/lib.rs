//! gRPC for vdi-cluster: minicloud's worker registration service, as
//! `vdi.cluster.v1.WorkerManagementService`, and the worker side minicloud's
//! control plane calls, as `vdi.cluster.v1.WorkerService`
//! (`docs/compat/minicloud.md`).
//!
//! The service definitions are `proto/vdi/cluster/v1/worker_management.proto`
//! and `worker_service.proto`,
//! compiled at build time in pure Rust (protox), so a fresh clone builds with
//! cargo alone. This crate holds:
//!
//! * [`pb`] — the generated messages, client and server traits, and the
//!   encoded descriptors for server reflection;
//! * [`convert`] — conversions between those messages and the JSON
//!   protocol's bodies (`vdi-cluster-protocol`), so that gRPC and HTTP
//!   reach core through the same types and the same validation;
//! * [`status`] — the status-code mapping both sides share;
//! * [`codec`] — protobuf as the generated code reads it, with a message
//!   that does not decode refused as `INVALID_ARGUMENT`;
//! * [`client`] — [`GrpcControlPlane`](client::GrpcControlPlane), the node
//!   agent's client.
//!
//! The server side of `WorkerManagementService` is in `vdi-cluster-server`
//! (`serve --grpc-listen`), next to the HTTP handlers whose credential
//! checks it reuses; that of `WorkerService` in `vdi-cluster-node`
//! (`worker --grpc-listen`), beside the HTTP worker API.

pub mod client;
pub mod codec;
pub mod convert;
pub mod status;

/// The gRPC library these types come from, for callers that name its
/// types (`Status`, `Code`, metadata) without a version of their own.
pub use tonic;

/// The generated code of `vdi.cluster.v1`.
#[allow(missing_docs, unreachable_pub, missing_debug_implementations)]
#[allow(clippy::all, clippy::pedantic, clippy::clone_on_ref_ptr)]
pub mod pb {
    tonic::include_proto!("vdi.cluster.v1");

    /// The encoded file descriptor set of the control plane's service
    /// (`WorkerManagementService` only), for its reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/vdi_cluster_v1_descriptor.bin"));
}

/// The service's full name, as health checks and reflection list it.
pub const SERVICE_NAME: &str = "vdi.cluster.v1.WorkerManagementService";

/// The worker side's service (`worker_service.proto`), served by the node
/// agent with `--grpc-listen`.
pub const WORKER_SERVICE_NAME: &str = "vdi.cluster.v1.WorkerService";
