//! The gRPC server's connections over TLS: each completes its handshake
//! in its own task ([`TlsIncoming`]), and carries its peer's address and
//! client certificate ([`GrpcPeer`]) into every request's extensions.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tonic::transport::server::Connected;
use vdi_cluster_node::tls::{MaybeTls, PeerCertificate, TlsAcceptor, TlsIncoming};

/// Who is at the other end of a gRPC connection.
#[derive(Debug, Clone)]
pub(crate) struct GrpcPeer {
    /// Its address.
    pub(crate) addr: SocketAddr,
    /// The client certificate it presented.
    pub(crate) certificate: Option<PeerCertificate>,
}

/// An accepted TLS connection with its peer.
#[derive(Debug)]
pub(crate) struct GrpcConn {
    io: MaybeTls,
    peer: GrpcPeer,
}

impl Connected for GrpcConn {
    type ConnectInfo = GrpcPeer;

    fn connect_info(&self) -> GrpcPeer {
        self.peer.clone()
    }
}

/// The connections of `listener`, over TLS with `acceptor`.
pub(crate) fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> io::Result<impl Stream<Item = io::Result<GrpcConn>>> {
    let accepted = TlsIncoming::new(listener, acceptor)?;
    Ok(futures::stream::unfold(
        accepted,
        |mut accepted| async move {
            let (io, addr) = axum::serve::Listener::accept(&mut accepted).await;
            let peer = GrpcPeer {
                addr,
                certificate: io.peer_certificate(),
            };
            Some((Ok(GrpcConn { io, peer }), accepted))
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
