//! Where a webhook may be delivered: not to the control plane's own
//! network. An ADMIN could otherwise point a webhook at a cloud's metadata
//! service (`169.254.169.254`), at `localhost`, at the control plane's own
//! port or at any host of a private network, and have the leader post to
//! it. [`refused_target`] says which addresses are refused; the sender
//! applies it to every address a target's name resolves to, at every
//! delivery (a name may resolve elsewhere tomorrow), unless the operator
//! allows private targets for a lab.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a webhook may not be delivered to `ip`, or `None` when it may:
/// loopback, link-local, private (RFC 1918, the shared address space of
/// RFC 6598, IPv6 unique local), unspecified, multicast or broadcast
/// addresses are refused; an IPv4 address inside IPv6 is judged as IPv4.
pub fn refused_target(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("multicast or broadcast")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast or broadcast")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(ip: &str) -> Option<&'static str> {
        refused_target(ip.parse().unwrap())
    }

    #[test]
    fn the_control_planes_own_networks_are_refused() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("fd00::1", "private"),
            ("::ffff:10.0.0.1", "private"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast or broadcast"),
            ("255.255.255.255", "multicast or broadcast"),
        ] {
            assert_eq!(judged(ip), Some(why), "{ip}");
        }
        for ok in [
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2606:4700::1111",
        ] {
            assert_eq!(judged(ok), None, "{ok}");
        }
    }
}
