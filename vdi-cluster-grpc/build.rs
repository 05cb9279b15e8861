//! Compiles `proto/` with protox (pure Rust, no `protoc`), then generates
//! the messages, the client and the server with tonic; the encoded file
//! descriptor set is kept for server reflection.

use std::path::PathBuf;

const PROTO: &str = "proto/vdi/cluster/v1/worker_management.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile([PROTO], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("vdi_cluster_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::StrictCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
