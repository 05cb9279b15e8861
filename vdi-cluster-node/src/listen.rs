//! Listening sockets with an accept queue sized for an exam's start.
//!
//! When an exam opens, thousands of students click within seconds and the
//! control plane opens a connection to a worker for every session it
//! starts. `TcpListener::bind` asks the kernel for a queue of 1,024
//! connections waiting to be accepted; past that, Linux drops the new
//! connection's handshake and the client retries only after 1, 3, 7, 15 s,
//! which a caller sees as a timed-out request. [`bind`] asks for
//! [`LISTEN_BACKLOG`] instead. The kernel caps the queue at
//! `net.core.somaxconn` (4,096 by default since Linux 5.4).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The accept queue [`bind`] asks for.
pub const LISTEN_BACKLOG: u32 = 4_096;

/// Binds `addr` (with `SO_REUSEADDR`, as `TcpListener::bind` does) and
/// listens with a queue of [`LISTEN_BACKLOG`] connections.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = vdi_cluster_node::listen::bind("127.0.0.1:0".parse().unwrap())?;
/// assert!(listener.local_addr()?.port() > 0);
/// # Ok(())
/// # }
/// ```
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_on_ipv4_and_ipv6_loopback() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let Ok(listener) = bind(addr) else {
                // A machine without IPv6 loopback.
                assert!(addr.is_ipv6(), "{addr} must bind");
                continue;
            };
            let local = listener.local_addr().unwrap();
            let (client, accepted) =
                tokio::join!(tokio::net::TcpStream::connect(local), listener.accept());
            assert_eq!(client.unwrap().peer_addr().unwrap(), local);
            assert!(accepted.is_ok());
        }
    }
}
