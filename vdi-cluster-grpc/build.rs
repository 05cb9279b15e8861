//! Compiles `proto/` with protox (pure Rust, no `protoc`), then generates
//! the messages, the clients and the servers with tonic; the encoded file
//! descriptor set of the control plane's service is kept for its server
//! reflection (the worker's service is not served there).

use std::path::PathBuf;

/// The control plane's service (minicloud's).
const CONTROL_PLANE_PROTO: &str = "proto/vdi/cluster/v1/worker_management.proto";
/// The worker's service.
const WORKER_PROTO: &str = "proto/vdi/cluster/v1/worker_service.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let control_plane = protox::compile([CONTROL_PLANE_PROTO], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("vdi_cluster_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&control_plane),
    )?;
    let both = protox::compile([CONTROL_PLANE_PROTO, WORKER_PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::StrictCodec")
        .compile_fds(both)?;
    Ok(())
}
