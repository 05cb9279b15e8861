//! The per-peer connection cap: how many connections one address may hold
//! open at once, so a single client (a flood of silent connections, a
//! runaway pool) cannot take every slot of the server-wide cap and starve
//! everyone else.
//!
//! Peers are counted under the throttle's [`PeerKey`] (an IPv4 address,
//! an IPv6 /64). Connections from a configured trusted proxy are not
//! capped: they carry many clients. A connection over its peer's cap is
//! closed as soon as it is accepted, before any byte is read, and the
//! first refusal of an episode (until the peer's count falls to zero) is
//! logged as a warning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::throttle::PeerKey;

#[derive(Debug, Default)]
struct Open {
    count: usize,
    warned: bool,
}

/// Open connections per peer, and the cap they are held to.
#[derive(Debug)]
pub(crate) struct PeerCaps {
    limit: usize,
    exempt: Vec<IpAddr>,
    open: Mutex<HashMap<PeerKey, Open>>,
}

impl PeerCaps {
    /// At most `limit` connections per peer (at least one), none for the
    /// addresses in `exempt`.
    pub(crate) fn new(limit: usize, exempt: Vec<IpAddr>) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`: its slot, held while the
    /// connection is open, or `None` when the peer is at its cap.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        if self.exempt.contains(&ip) {
            return Some(PeerSlot { caps: None });
        }
        let key = PeerKey::of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = open.entry(key).or_default();
        if entry.count >= self.limit {
            if !entry.warned {
                entry.warned = true;
                tracing::warn!(
                    peer = %ip,
                    limit = self.limit,
                    "per-peer connection limit reached: this peer's new connections are closed until some of its own close"
                );
            }
            return None;
        }
        entry.count += 1;
        Some(PeerSlot {
            caps: Some((Arc::clone(self), key)),
        })
    }

    fn release(&self, key: PeerKey) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = open.get_mut(&key) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                open.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn peers(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// One connection's place in its peer's count; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct PeerSlot {
    caps: Option<(Arc<PeerCaps>, PeerKey)>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Some((caps, key)) = self.caps.take() {
            caps.release(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_peer_at_its_cap_is_refused_until_one_of_its_own_closes() {
        let caps = PeerCaps::new(2, Vec::new());
        let first = caps.admit(ip("10.0.0.9")).unwrap();
        let _second = caps.admit(ip("10.0.0.9")).unwrap();
        assert!(caps.admit(ip("10.0.0.9")).is_none());
        // Another peer is not affected.
        let other = caps.admit(ip("10.0.0.10")).unwrap();
        drop(first);
        assert!(caps.admit(ip("10.0.0.9")).is_some());
        drop(other);
        assert_eq!(caps.peers(), 1, "a peer with no connection is forgotten");
    }

    #[test]
    fn an_ipv6_64_is_one_peer_and_trusted_proxies_are_exempt() {
        let caps = PeerCaps::new(1, vec![ip("10.0.0.1")]);
        let _a = caps.admit(ip("2001:db8::1")).unwrap();
        assert!(caps.admit(ip("2001:db8::2")).is_none());
        let proxied: Vec<_> = (0..3).map(|_| caps.admit(ip("10.0.0.1"))).collect();
        assert!(proxied.iter().all(Option::is_some));
        drop(proxied);
        assert_eq!(caps.peers(), 1);
    }
}
