//! A connection over TLS or not, and the worker's TLS listener.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::PeerCertificate;

/// An accepted connection: plain TCP, or TLS over it.
#[derive(Debug)]
pub enum MaybeTls {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// Completes the TLS handshake of `stream` with `acceptor` within
    /// `timeout`, or passes it through when there is no acceptor.
    pub async fn accept(
        stream: TcpStream,
        acceptor: Option<&TlsAcceptor>,
        timeout: Duration,
    ) -> io::Result<Self> {
        let Some(acceptor) = acceptor else {
            return Ok(Self::Plain(stream));
        };
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Ok(Self::Tls(Box::new(tls))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not completed in time",
            )),
        }
    }

    /// The client certificate the peer presented over TLS.
    pub fn peer_certificate(&self) -> Option<PeerCertificate> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(tls) => PeerCertificate::of(tls.get_ref().1),
        }
    }

    /// The underlying TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How long a new connection may take over its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener whose connections complete their TLS handshake in their
/// own task, so a slow or failing handshake never holds up the next
/// accept. A failed handshake (plain HTTP, a client certificate the CA
/// did not sign) closes that connection only. It is `axum::serve`'s
/// listener as [`new`](Self::new) makes it; [`admitting`](Self::admitting)
/// also decides on each peer before reading a byte, and hands its
/// answer `T` on with the connection.
#[derive(Debug)]
pub struct TlsIncoming<T = ()> {
    local: SocketAddr,
    accepted: mpsc::Receiver<(MaybeTls, SocketAddr, T)>,
}

impl TlsIncoming {
    /// Accepts on `listener`, completing handshakes with `acceptor`.
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> io::Result<Self> {
        Self::admitting(listener, Some(acceptor), |_| Some(()))
    }
}

impl<T: Send + 'static> TlsIncoming<T> {
    /// Accepts on `listener`; `admit` answers for each new peer at once
    /// (`None` closes the connection before a byte is read; `Some`, a
    /// slot to hold while it is open, travels with it); then completes
    /// the handshake with `acceptor`, or passes plain TCP on without one.
    pub fn admitting(
        listener: TcpListener,
        acceptor: Option<TlsAcceptor>,
        admit: impl Fn(SocketAddr) -> Option<T> + Send + 'static,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    // The server stopped: release the port.
                    () = tx.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(admitted) = admit(peer) else {
                    drop(stream);
                    continue;
                };
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match MaybeTls::accept(stream, acceptor.as_ref(), HANDSHAKE_TIMEOUT).await {
                        Ok(conn) => {
                            let _ = tx.send((conn, peer, admitted)).await;
                        }
                        Err(e) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    }
                });
            }
        });
        Ok(Self { local, accepted })
    }

    /// The next connection, its peer and what `admit` answered for it.
    pub async fn next(&mut self) -> (MaybeTls, SocketAddr, T) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop never ends while this receiver lives.
            None => std::future::pending().await,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = MaybeTls;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, peer, ()) = self.next().await;
        (io, peer)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
