//! Throttling of failed authentication, per peer.
//!
//! Every request that presents a credential the server refuses (401) counts
//! against its *peer*: the connection's address, or — only when the
//! connection comes from a configured trusted proxy — the nearest untrusted
//! address in its `X-Forwarded-For`. A peer with more than
//! [`ThrottleConfig::max_failures`] failures within
//! [`ThrottleConfig::window`] is answered 429 with `Retry-After` on every
//! request that needs a credential until the window has passed, before any
//! credential is checked (a guesser learns nothing more). Others are never
//! slowed by one peer's failures, and a success does not reset the count
//! (a guesser cannot interleave a known good credential to keep going).
//!
//! IPv6 peers are counted by their /64 network, the block one subscriber
//! usually holds. The table is bounded: when it is full, the entries whose
//! window has passed are swept (at most once a second, so a flood of new
//! peers costs no repeated scans), and a new peer that still finds no room
//! is not tracked until some do.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How failed authentication is throttled.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures a peer may have within one window (20).
    pub max_failures: u32,
    /// The window (60 s), counted from the peer's first failure in it.
    pub window: Duration,
    /// Peers tracked at once (100,000).
    pub capacity: usize,
    /// Proxies whose `X-Forwarded-For` is believed (none).
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 20,
            window: Duration::from_secs(60),
            capacity: 100_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The key a peer is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey(IpAddr);

impl PeerKey {
    /// The key of `addr`: itself for IPv4, its /64 for IPv6.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self(addr),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
struct Table {
    windows: HashMap<PeerKey, Window>,
    swept: Option<Instant>,
}

/// Least time between two sweeps of a full table.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Counts failures per peer. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    table: Mutex<Table>,
}

impl Throttle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            table: Mutex::new(Table::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// The peer a request is counted under: the connection's address, or
    /// the nearest untrusted hop of `forwarded_for` (the
    /// `X-Forwarded-For` value) when the connection is a trusted proxy.
    pub fn peer(&self, connection: IpAddr, forwarded_for: Option<&str>) -> PeerKey {
        let trusted = |ip: &IpAddr| self.config.trusted_proxies.contains(ip);
        if !trusted(&connection) {
            return PeerKey::of(connection);
        }
        let hops = forwarded_for
            .into_iter()
            .flat_map(|v| v.rsplit(','))
            .map(|hop| hop.trim().parse::<IpAddr>());
        for hop in hops {
            match hop {
                Ok(ip) if trusted(&ip) => continue,
                Ok(ip) => return PeerKey::of(ip),
                // A malformed hop: nothing before it can be believed.
                Err(_) => break,
            }
        }
        PeerKey::of(connection)
    }

    /// `Some(wait)` when `peer` is throttled at `now`: refuse it for that
    /// long.
    pub fn blocked(&self, peer: PeerKey, now: Instant) -> Option<Duration> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let w = table.windows.get(&peer)?;
        let ends = w.started + self.config.window;
        (w.failures >= self.config.max_failures && now < ends).then(|| ends - now)
    }

    /// Counts one failed authentication of `peer` at `now`.
    pub fn record_failure(&self, peer: PeerKey, now: Instant) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.config.window;
        if !table.windows.contains_key(&peer) && table.windows.len() >= self.config.capacity {
            if table.swept.is_none_or(|at| now >= at + SWEEP_EVERY) {
                table.windows.retain(|_, w| now < w.started + window);
                table.swept = Some(now);
            }
            if table.windows.len() >= self.config.capacity {
                return;
            }
        }
        let w = table.windows.entry(peer).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn throttle(max_failures: u32, capacity: usize) -> Throttle {
        Throttle::new(ThrottleConfig {
            max_failures,
            window: Duration::from_secs(60),
            capacity,
            trusted_proxies: vec![ip("10.0.0.1"), ip("10.0.0.2")],
        })
    }

    #[test]
    fn a_peer_is_blocked_after_its_failures_until_the_window_ends() {
        let t = throttle(3, 100);
        let start = Instant::now();
        let me = PeerKey::of(ip("192.0.2.7"));
        let other = PeerKey::of(ip("192.0.2.8"));
        for i in 0..3 {
            assert_eq!(t.blocked(me, start), None, "failure {i}");
            t.record_failure(me, start + Duration::from_secs(i));
        }
        let later = start + Duration::from_secs(10);
        assert_eq!(t.blocked(me, later), Some(Duration::from_secs(50)));
        assert_eq!(t.blocked(other, later), None, "others are not slowed");
        let after = start + Duration::from_secs(60);
        assert_eq!(t.blocked(me, after), None);
        // A new window starts from zero.
        t.record_failure(me, after);
        assert_eq!(t.blocked(me, after), None);
    }

    #[test]
    fn ipv6_peers_count_by_their_64() {
        assert_eq!(
            PeerKey::of(ip("2001:db8:1:2::1")),
            PeerKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            PeerKey::of(ip("2001:db8:1:2::1")),
            PeerKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            PeerKey::of(ip("::ffff:192.0.2.1")),
            PeerKey::of(ip("192.0.2.1"))
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let t = throttle(3, 100);
        let xff = Some("198.51.100.9, 203.0.113.5, 10.0.0.2");
        // From an untrusted peer, the header is ignored.
        assert_eq!(t.peer(ip("192.0.2.1"), xff), PeerKey::of(ip("192.0.2.1")));
        // From a trusted proxy: the nearest untrusted hop.
        assert_eq!(t.peer(ip("10.0.0.1"), xff), PeerKey::of(ip("203.0.113.5")));
        // Garbage stops the walk at the proxy itself.
        assert_eq!(
            t.peer(ip("10.0.0.1"), Some("198.51.100.9, junk")),
            PeerKey::of(ip("10.0.0.1"))
        );
        assert_eq!(t.peer(ip("10.0.0.1"), None), PeerKey::of(ip("10.0.0.1")));
    }

    #[test]
    fn the_table_stays_bounded_and_frees_expired_peers() {
        let t = throttle(1, 4);
        let start = Instant::now();
        let peer = |i: u8| PeerKey::of(IpAddr::from([192, 0, 2, i]));
        for i in 0..10 {
            t.record_failure(peer(i), start);
        }
        assert_eq!(t.table.lock().unwrap().windows.len(), 4);
        assert!(t.blocked(peer(0), start).is_some());
        assert!(t.blocked(peer(9), start).is_none(), "no room: not tracked");
        // Once the first windows have passed, newcomers are tracked again.
        let later = start + Duration::from_secs(61);
        t.record_failure(peer(9), later);
        assert!(t.blocked(peer(9), later).is_some());
        assert!(t.table.lock().unwrap().windows.len() <= 4);
    }
}
