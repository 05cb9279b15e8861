//! Hostile connections: silent peers, slow request heads and idle
//! keep-alive connections are closed, and the server keeps answering
//! while a crowd of them holds every connection slot. Waits are bounded
//! by deadlines, never asserted on.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vdi_cluster_server::HttpLimits;

use crate::common::{Setup, TestServer};

const GIVE_UP: Duration = Duration::from_secs(30);

fn strict_limits() -> HttpLimits {
    HttpLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        max_connections: 16,
        ..HttpLimits::default()
    }
}

async fn start() -> TestServer {
    let (mut setup, _workers) = Setup::memory();
    setup.limits = strict_limits();
    TestServer::start(setup).await
}

fn addr(server: &TestServer) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(GIVE_UP, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open past {GIVE_UP:?}"),
        }
    }
}

#[tokio::test]
async fn silent_and_slow_peers_are_disconnected() {
    let server = start().await;
    let mut silent = TcpStream::connect(addr(&server)).await.unwrap();
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    // A request head that never ends.
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    until_closed(&mut silent).await;
    until_closed(&mut slow).await;
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_their_answer() {
    let server = start().await;
    let mut conn = TcpStream::connect(addr(&server)).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer arrives, then the connection closes once idle.
    let seen = until_closed(&mut conn).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    server.stop().await;
}

#[tokio::test]
async fn a_crowd_of_idle_connections_does_not_lock_out_healthz() {
    let server = start().await;
    // Four times the cap of silent connections.
    let mut crowd = Vec::new();
    for _ in 0..64 {
        crowd.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    let answered = tokio::time::timeout(GIVE_UP, async {
        loop {
            if let Ok(r) = server
                .request(reqwest::Method::GET, "/healthz")
                .send()
                .await
            {
                return r.status();
            }
        }
    })
    .await
    .expect("/healthz answered while the crowd held the slots");
    assert_eq!(answered, reqwest::StatusCode::OK);
    drop(crowd);
    server.stop().await;
}

/// Opens a connection to `server` from the loopback address `from`.
async fn connect_from(from: &str, server: &TestServer) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(addr(server).parse().unwrap()).await.unwrap()
}

#[tokio::test]
async fn one_peers_silent_crowd_leaves_room_for_the_others() {
    let (mut setup, _workers) = Setup::memory();
    // Silent connections are never timed out here: only the per-peer cap
    // can leave room for another peer.
    setup.limits = HttpLimits {
        header_read_timeout: Duration::from_secs(3_600),
        idle_timeout: Duration::from_secs(3_600),
        max_connections: 32,
        max_connections_per_peer: 8,
        ..HttpLimits::default()
    };
    let server = TestServer::start(setup).await;
    // One peer (127.0.0.2) opens four times the server-wide cap.
    let mut crowd = Vec::new();
    for _ in 0..128 {
        crowd.push(connect_from("127.0.0.2", &server).await);
    }
    // Its connections past its cap are closed without an answer...
    let refused = until_closed(crowd.last_mut().unwrap()).await;
    assert_eq!(refused, "");
    // ...and another peer (127.0.0.1) is answered while it holds its share.
    let answered = tokio::time::timeout(
        GIVE_UP,
        server.request(reqwest::Method::GET, "/healthz").send(),
    )
    .await
    .expect("/healthz answered while one peer held its share of the slots")
    .unwrap();
    assert_eq!(answered.status(), reqwest::StatusCode::OK);
    // The crowd's first connections are still open: its share is kept.
    crowd[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let seen = until_closed(&mut crowd[0]).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    drop(crowd);
    server.stop().await;
}

/// The HTTP/2 client preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

#[tokio::test]
async fn the_grpc_listener_holds_one_peer_to_its_share_too() {
    let (mut setup, _workers) = Setup::memory();
    setup.limits = HttpLimits {
        max_connections: 32,
        max_connections_per_peer: 8,
        ..HttpLimits::default()
    };
    let server = TestServer::start(setup).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener.local_addr().unwrap();
    tokio::spawn(vdi_cluster_server::grpc::serve(
        listener,
        server.state.clone(),
    ));
    let connect = |from: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(grpc).await.unwrap()
    };
    // One peer (127.0.0.2) opens three times its share of silent
    // connections: those past its share are closed without a byte.
    let mut crowd = Vec::new();
    for _ in 0..24 {
        crowd.push(connect("127.0.0.2").await);
    }
    let refused = until_closed(crowd.last_mut().unwrap()).await;
    assert_eq!(refused, "");
    // Another peer (127.0.0.1) is answered meanwhile.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tokio::time::timeout(
        GIVE_UP,
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default()),
    )
    .await
    .expect("the health check answered while one peer held its share")
    .unwrap();
    assert_eq!(health.into_inner().status, 1, "SERVING");
    // The crowd's first connection is kept: it speaks HTTP/2 and the
    // server answers with its settings.
    crowd[0].write_all(H2_PREFACE).await.unwrap();
    let mut settings = [0u8; 9];
    tokio::time::timeout(GIVE_UP, crowd[0].read_exact(&mut settings))
        .await
        .expect("the server's settings")
        .unwrap();
    assert_eq!(settings[3], 4, "a SETTINGS frame: {settings:?}");
    drop(crowd);
    server.stop().await;
}
