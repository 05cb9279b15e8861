//! gRPC input a hostile client sends, against real servers over
//! loopback: messages that do not decode and HTTP/2 frames that do not
//! hold together answer `INVALID_ARGUMENT`, never `INTERNAL`.

use axum::http::uri::PathAndQuery;
use bytes::{Buf, BufMut};
use tokio::net::TcpListener;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::common::WORKER_TOKEN;
use crate::hostile::replicas;

/// Bytes sent and received as they are: what a hostile client puts in a
/// gRPC frame.
#[derive(Debug, Default, Clone, Copy)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[tokio::test]
async fn a_grpc_message_that_does_not_decode_is_invalid_argument() {
    let (a, _b, _worker) = replicas().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(vdi_cluster_server::grpc::serve(listener, a.state.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    // Not a message at all; a string field cut short.
    for bytes in [
        vec![0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![0x0a, 0x0a, b'w', b'-', b'1'],
    ] {
        let mut request = Request::new(bytes.clone());
        request
            .metadata_mut()
            .insert("x-worker-token", WORKER_TOKEN.parse().unwrap());
        grpc.ready().await.unwrap();
        let path = PathAndQuery::from_static("/vdi.cluster.v1.WorkerManagementService/Heartbeat");
        let status = grpc.unary(request, path, Raw).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{bytes:02x?}: {status:?}"
        );
    }
}

/// Sends `body` as it is, in raw HTTP/2 frames, to `path` of the gRPC
/// server at `addr` with a worker token and `extra` headers; the answer's
/// `grpc-status` and `grpc-message` (from the headers of a trailers-only
/// answer, or from the trailers).
async fn raw_grpc(
    addr: std::net::SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> (Code, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut request = axum::http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-worker-token", WORKER_TOKEN);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let (answer, mut stream) = client
        .send_request(request.body(()).unwrap(), false)
        .unwrap();
    stream
        .send_data(bytes::Bytes::copy_from_slice(body), true)
        .unwrap();
    let (parts, mut answer) = answer.await.unwrap().into_parts();
    let status = |headers: &axum::http::HeaderMap| {
        let code = headers.get("grpc-status")?;
        let message = headers
            .get("grpc-message")
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
            .unwrap_or_default();
        Some((Code::from_bytes(code.as_bytes()), message))
    };
    if let Some(status) = status(&parts.headers) {
        return status;
    }
    while let Some(data) = answer.data().await {
        data.unwrap();
    }
    let trailers = answer.trailers().await.unwrap().expect("trailers");
    status(&trailers).expect("a grpc-status")
}

#[tokio::test]
async fn a_grpc_frame_that_does_not_hold_together_is_invalid_argument() {
    let (a, _b, _worker) = replicas().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(vdi_cluster_server::grpc::serve(listener, a.state.clone()));
    let heartbeat = "/vdi.cluster.v1.WorkerManagementService/Heartbeat";
    let cases: [(&str, &[u8], Code); 6] = [
        // The compressed flag, and no grpc-encoding.
        (
            "compressed",
            &[1, 0, 0, 0, 2, 0x0a, 0x00],
            Code::InvalidArgument,
        ),
        ("flag 7", &[7, 0, 0, 0, 0], Code::InvalidArgument),
        // A length prefix of 10 over a body of 3.
        (
            "long prefix",
            &[0, 0, 0, 0, 10, 0x0a, 0x01, b'w'],
            Code::InvalidArgument,
        ),
        ("cut header", &[0, 0, 0], Code::InvalidArgument),
        ("no message", &[], Code::InvalidArgument),
        // 4 GiB announced: refused before any of it is read.
        (
            "oversized",
            &[0, 0xff, 0xff, 0xff, 0xff],
            Code::ResourceExhausted,
        ),
    ];
    for (what, body, expected) in cases {
        let (code, message) = raw_grpc(addr, heartbeat, &[], body).await;
        assert_eq!(code, expected, "{what}: {message}");
    }
    // A compressed frame with a grpc-encoding is tonic's to answer (no
    // compression is enabled), never INTERNAL.
    let (code, message) = raw_grpc(
        addr,
        heartbeat,
        &[("grpc-encoding", "gzip")],
        &[1, 0, 0, 0, 2, 0x0a, 0x00],
    )
    .await;
    assert_eq!(code, Code::Unimplemented, "{message}");
    // Frames that hold together pass: the health check's empty message.
    let (code, message) = raw_grpc(addr, "/grpc.health.v1.Health/Check", &[], &[0; 5]).await;
    assert_eq!(code, Code::Ok, "{message}");
}
