//! Accepting connections, with the limits a server facing an untrusted
//! network needs.
//!
//! `axum::serve` keeps a connection for as long as the peer likes: a
//! thousand silent TCP connections exhaust the process's file descriptors
//! and `/healthz` (and every heartbeat) stops answering. [`serve`] accepts
//! and drives each HTTP/1.1 connection itself:
//!
//! * **Header-read timeout** — a connection must deliver a complete request
//!   head within [`HttpLimits::header_read_timeout`] of opening (slow-loris
//!   peers are dropped).
//! * **Idle timeout** — a connection on which nothing was read or written
//!   for [`HttpLimits::idle_timeout`] is shut down gracefully: a request in
//!   progress (a long allocation, an event stream) still runs to its end
//!   and gets its answer, then the connection closes.
//! * **Connection cap** — at most [`HttpLimits::max_connections`] at once;
//!   at the cap, accepting pauses (the kernel's backlog holds newcomers)
//!   until a connection closes, and a warning says so once per episode.
//! * **Per-peer cap** — at most [`HttpLimits::max_connections_per_peer`]
//!   connections from one address (never more than half the cap), so one
//!   client cannot take every slot; a connection past it is closed at
//!   once (`peers`). Trusted proxies are exempt. The gRPC listener holds
//!   peers to the same cap.
//! * **TLS** — with a certificate (`--tls-cert`), each connection
//!   completes its handshake in its own task within the header-read
//!   timeout; one that fails it (plain HTTP, a client certificate the CA
//!   did not sign) is closed. The client certificate's names go in each
//!   request's extensions as a [`PeerCertificate`].
//! * The peer address is put in each request's extensions as
//!   [`ConnectInfo`], for per-peer decisions.
//!
//! [`raise_fd_limit`] lifts the soft file-descriptor limit to the hard one
//! at start, where the system allows it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use vdi_cluster_node::tls::{MaybeTls, PeerCertificate, TlsAcceptor};

use crate::state::HttpLimits;

mod peers;

pub(crate) use peers::{PeerCaps, PeerSlot};

/// Serves `app` on `listener` under `limits` until `shutdown` is
/// cancelled; then stops accepting, shuts every connection down
/// gracefully and returns once all have closed. Connections from
/// `trusted_proxies` are not held to the per-peer cap; with `tls`, every
/// connection is TLS.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    trusted_proxies: Vec<IpAddr>,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let peers = PeerCaps::new(limits.per_peer_cap(), trusted_proxies);
    let connections = TaskTracker::new();
    let mut at_cap = false;
    loop {
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => {
                at_cap = false;
                permit
            }
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    permit = Arc::clone(&slots).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over its cap, the connection is closed here and the slot of the
        // server-wide cap serves the next one.
        let Some(peer_slot) = peers.admit(peer.ip()) else {
            drop(stream);
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match MaybeTls::accept(stream, tls.as_ref(), limits.header_read_timeout).await {
                Ok(stream) => serve_connection(stream, peer, app, limits, shutdown).await,
                Err(e) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
            }
            drop(peer_slot);
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Drives one connection until it closes.
async fn serve_connection(
    stream: MaybeTls,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    if let Err(e) = stream.tcp().set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let certificate: Option<PeerCertificate> = stream.peer_certificate();
    let (io, activity) = Watched::new(stream);
    let service = app.map_request(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(certificate) = &certificate {
            req.extensions_mut().insert(certificate.clone());
        }
        req
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        let idle_deadline = activity.last() + limits.idle_timeout;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(idle_deadline), if !closing => {
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    tracing::debug!(%peer, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            () = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds after it opened.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A stream that records when bytes last went either way.
#[derive(Debug)]
struct Watched {
    stream: MaybeTls,
    activity: Arc<Activity>,
}

impl Watched {
    fn new(stream: MaybeTls) -> (Self, Arc<Activity>) {
        let activity = Arc::new(Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let watched = Self {
            stream,
            activity: Arc::clone(&activity),
        };
        (watched, activity)
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// File descriptors kept free of connections: the store's pool, the
/// worker client's connections, logs.
const RESERVED_FDS: u64 = 128;

/// Raises the soft limit on open files to the hard limit where the system
/// allows it, and returns how many connections fit under the result
/// (`None` when the limit cannot be read).
pub fn raise_fd_limit() -> Option<usize> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    if limit.maximum.is_none_or(|hard| hard > soft) {
        let wanted = limit.maximum.unwrap_or(1 << 20);
        let raised = rustix::process::Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from = soft, to = wanted, "raised the open-file limit");
                limit.current = Some(wanted);
            }
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open-file limit"),
        }
    }
    let usable = limit.current?.saturating_sub(RESERVED_FDS);
    Some(usize::try_from(usable).unwrap_or(usize::MAX))
}
