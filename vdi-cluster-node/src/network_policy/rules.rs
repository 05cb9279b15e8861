//! The nftables rules of one exam desktop, computed purely from its
//! policy, its address and what the allowed domains resolved to.
//!
//! A [`Ruleset`] is the decision (which networks the desktop may reach,
//! which resolvers it may ask); [`Ruleset::verdict`] answers for one
//! packet, and [`Ruleset::render`] writes the same decision as an `nft -f`
//! script: a table of its own per desktop address, replaced whole each
//! time (so applying twice is applying once) and removed by
//! [`removal`]. The chain hooks `forward` ahead of the host's other
//! filters: traffic of a desktop behind a bridge or a veth passes there.
//! Replies to connections made to the desktop (the remote-desktop
//! client's) pass as established traffic.

use std::fmt::Write as _;
use std::net::IpAddr;

use vdi_cluster_core::network::{IpNet, NetworkPolicy};

/// Port of DNS, allowed towards the resolvers when domains are listed.
pub const DNS_PORT: u16 = 53;

/// The transport of a packet, for [`Ruleset::verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP to a port.
    Tcp(u16),
    /// UDP to a port.
    Udp(u16),
    /// Anything else (ICMP…).
    Other,
}

/// What the rules do with a new outbound packet of the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It passes.
    Accept,
    /// It is dropped.
    Drop,
}

/// The rules of one restricted desktop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    desktop: IpAddr,
    allowed: Vec<IpNet>,
    resolvers: Vec<IpAddr>,
}

/// The nftables table of the desktop at `desktop`
/// (`vdi_desktop_10_88_1_2`).
pub fn table_name(desktop: IpAddr) -> String {
    let digits: String = desktop
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("vdi_desktop_{digits}")
}

/// The script removing the rules of the desktop at `desktop` (an error
/// from `nft` when it has none).
pub fn removal(desktop: IpAddr) -> String {
    format!("delete table inet {}\n", table_name(desktop))
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl Ruleset {
    /// The rules for the desktop at `desktop` under `policy`, where the
    /// allowed domains resolved to `resolved` and the node's resolvers
    /// are `resolvers` (asked only when domains are listed); `None` when
    /// the policy does not restrict. Addresses of the other family than
    /// the desktop's are left out; the networks are merged, so the
    /// result does not depend on the order or repetition of the lists.
    pub fn new(
        policy: &NetworkPolicy,
        desktop: IpAddr,
        resolved: &[IpAddr],
        resolvers: &[IpAddr],
    ) -> Option<Self> {
        if !policy.restrict_internet {
            return None;
        }
        let nets: Vec<IpNet> = policy
            .allowed_networks()
            .into_iter()
            .chain(resolved.iter().map(|&ip| IpNet::from(ip)))
            .filter(|net| same_family(net.addr(), desktop))
            .collect();
        let mut resolvers: Vec<IpAddr> = if policy.allowed_domains.is_empty() {
            Vec::new()
        } else {
            resolvers
                .iter()
                .copied()
                .filter(|&ip| same_family(ip, desktop))
                .collect()
        };
        resolvers.sort_unstable();
        resolvers.dedup();
        Some(Self {
            desktop,
            allowed: IpNet::aggregate(&nets),
            resolvers,
        })
    }

    /// The networks the desktop may reach, merged and in order.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// What happens to a new packet from the desktop to `to`.
    pub fn verdict(&self, to: IpAddr, transport: Transport) -> Verdict {
        let dns = matches!(
            transport,
            Transport::Tcp(DNS_PORT) | Transport::Udp(DNS_PORT)
        );
        if self.allowed.iter().any(|net| net.contains(&to)) || (dns && self.resolvers.contains(&to))
        {
            Verdict::Accept
        } else {
            Verdict::Drop
        }
    }

    /// The `nft -f` script: the desktop's table, replaced whole.
    pub fn render(&self) -> String {
        let table = table_name(self.desktop);
        let (family, kind) = if self.desktop.is_ipv4() {
            ("ip", "ipv4_addr")
        } else {
            ("ip6", "ipv6_addr")
        };
        let from = format!("{family} saddr {}", self.desktop);
        let mut out = String::new();
        // `add` then `delete` makes the replacement work whether or not
        // the table exists; `nft -f` applies the whole script or nothing.
        let _ = writeln!(out, "add table inet {table}");
        let _ = writeln!(out, "delete table inet {table}");
        let _ = writeln!(out, "table inet {table} {{");
        set(&mut out, "allowed", kind, true, &self.allowed);
        set(&mut out, "resolvers", kind, false, &self.resolvers);
        let _ = writeln!(out, "\tchain forward {{");
        let _ = writeln!(
            out,
            "\t\ttype filter hook forward priority filter - 10; policy accept;"
        );
        let _ = writeln!(out, "\t\t{from} ct state established,related accept");
        if !self.allowed.is_empty() {
            let _ = writeln!(out, "\t\t{from} {family} daddr @allowed accept");
        }
        if !self.resolvers.is_empty() {
            let _ = writeln!(
                out,
                "\t\t{from} {family} daddr @resolvers meta l4proto {{ tcp, udp }} th dport {DNS_PORT} accept"
            );
        }
        let _ = writeln!(out, "\t\t{from} counter drop");
        let _ = writeln!(out, "\t}}");
        let _ = writeln!(out, "}}");
        out
    }
}

fn set(out: &mut String, name: &str, kind: &str, interval: bool, items: &[impl ToString]) {
    if items.is_empty() {
        return;
    }
    let elements: Vec<String> = items.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "\tset {name} {{");
    let _ = writeln!(out, "\t\ttype {kind}");
    if interval {
        let _ = writeln!(out, "\t\tflags interval");
    }
    let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(", "));
    let _ = writeln!(out, "\t}}");
}

#[cfg(test)]
mod tests;
