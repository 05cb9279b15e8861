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
