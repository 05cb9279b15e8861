//! The gRPC server's connections: each counted under its peer's cap
//! (the HTTP listener's per-peer cap, closed at once past it), over TLS
//! with a certificate (the handshake in its own task, [`TlsIncoming`]),
//! carrying its peer's address and client certificate ([`GrpcPeer`])
//! into every request's extensions.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tonic::transport::server::Connected;
use vdi_cluster_node::tls::{MaybeTls, PeerCertificate, TlsAcceptor, TlsIncoming};

use crate::listener::{PeerCaps, PeerSlot};

/// Who is at the other end of a gRPC connection.
#[derive(Debug, Clone)]
pub(crate) struct GrpcPeer {
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// The client certificate it presented.
    pub(crate) certificate: Option<PeerCertificate>,
}

/// An accepted connection with its peer, holding its place in the
/// peer's count while open.
#[derive(Debug)]
pub(crate) struct GrpcConn {
    io: MaybeTls,
    peer: GrpcPeer,
    _slot: PeerSlot,
}

impl Connected for GrpcConn {
    type ConnectInfo = GrpcPeer;

    fn connect_info(&self) -> GrpcPeer {
        self.peer.clone()
    }
}

/// The connections of `listener` admitted by `peers`, over TLS with
/// `acceptor` when there is one.
pub(crate) fn incoming(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    peers: Arc<PeerCaps>,
) -> io::Result<impl Stream<Item = io::Result<GrpcConn>>> {
    let accepted = TlsIncoming::admitting(listener, acceptor, move |addr: SocketAddr| {
        peers.admit(addr.ip())
    })?;
    Ok(futures::stream::unfold(
        accepted,
        |mut accepted| async move {
            let (io, addr, slot) = accepted.next().await;
            let peer = GrpcPeer {
                addr,
                certificate: io.peer_certificate(),
            };
            Some((
                Ok(GrpcConn {
                    io,
                    peer,
                    _slot: slot,
                }),
                accepted,
            ))
        },
    ))
}

impl AsyncRead for GrpcConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for GrpcConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
