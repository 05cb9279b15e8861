use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use vdi_cluster_core::network::{IpNet, NetworkPolicy, parse_cidr};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn runbook_policy() -> NetworkPolicy {
    NetworkPolicy {
        allowed_domains: vec!["sot.umtoj.edu.vn".into()],
        allowed_cidrs: ["103.90.220.0/22", "42.1.76.128/28", "2001:db8::/32"]
            .iter()
            .map(|c| parse_cidr("EXAM_ALLOWED_CIDRS", c).unwrap())
            .collect(),
        allowed_ips: vec![ip("10.0.0.7")],
        origin_ip: Some(ip("203.210.213.198")),
        ..NetworkPolicy::restricted()
    }
}

#[test]
fn an_open_policy_has_no_rules() {
    assert_eq!(
        Ruleset::new(&NetworkPolicy::default(), ip("10.88.1.2"), &[], &[]),
        None
    );
}

#[test]
fn the_runbooks_policy_renders_one_table_for_the_desktop() {
    let rules = Ruleset::new(
        &runbook_policy(),
        ip("172.17.0.5"),
        &[ip("103.151.241.102"), ip("2001:db9::1")],
        &[ip("1.1.1.1"), ip("1.1.1.1"), ip("2606:4700::1111")],
    )
    .unwrap();
    let script = rules.render();
    assert_eq!(
        script,
        "add table inet vdi_desktop_172_17_0_5
delete table inet vdi_desktop_172_17_0_5
table inet vdi_desktop_172_17_0_5 {
\tset allowed {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.0.0.7/32, 42.1.76.128/28, 103.90.220.0/22, 103.151.241.102/32, 203.210.213.198/32 }
\t}
\tset resolvers {
\t\ttype ipv4_addr
\t\telements = { 1.1.1.1 }
\t}
\tchain forward {
\t\ttype filter hook forward priority filter - 10; policy accept;
\t\tip saddr 172.17.0.5 ct state established,related accept
\t\tip saddr 172.17.0.5 ip daddr @allowed accept
\t\tip saddr 172.17.0.5 ip daddr @resolvers meta l4proto { tcp, udp } th dport 53 accept
\t\tip saddr 172.17.0.5 counter drop
\t}
}
"
    );
    assert_eq!(
        rules.verdict(ip("1.1.1.1"), Transport::Udp(53)),
        Verdict::Accept
    );
    assert_eq!(
        rules.verdict(ip("1.1.1.1"), Transport::Tcp(443)),
        Verdict::Drop
    );
    assert_eq!(
        rules.verdict(ip("8.8.8.8"), Transport::Udp(53)),
        Verdict::Drop
    );
    assert_eq!(
        removal(ip("172.17.0.5")),
        "delete table inet vdi_desktop_172_17_0_5\n"
    );
}

#[test]
fn without_domains_no_dns_and_nothing_allowed_drops_everything() {
    let rules = Ruleset::new(
        &NetworkPolicy::restricted(),
        ip("fd00::5"),
        &[],
        &[ip("fd00::53")],
    )
    .unwrap();
    assert_eq!(
        rules.verdict(ip("fd00::53"), Transport::Udp(53)),
        Verdict::Drop
    );
    let script = rules.render();
    assert!(!script.contains("set "), "{script}");
    assert!(
        script.contains("table inet vdi_desktop_fd00__5 {"),
        "{script}"
    );
    assert!(
        script.contains("ip6 saddr fd00::5 counter drop"),
        "{script}"
    );
}

fn v4_net() -> impl Strategy<Value = IpNet> {
    // Few distinct high bits, so that networks overlap and merge often.
    (0u32..4, any::<u32>(), 8u8..=32).prop_map(|(high, low, prefix)| {
        let addr = Ipv4Addr::from((high << 30) | (low >> 2));
        IpNet::new(IpAddr::V4(addr), prefix).unwrap().trunc()
    })
}

fn v4_addr() -> impl Strategy<Value = IpAddr> {
    (0u32..4, any::<u32>())
        .prop_map(|(high, low)| IpAddr::V4(Ipv4Addr::from((high << 30) | (low >> 2))))
}

prop_compose! {
    fn policies()(
        cidrs in prop::collection::vec(v4_net(), 0..8),
        ips in prop::collection::vec(v4_addr(), 0..8),
        origin in prop::option::of(v4_addr()),
        domains in prop::collection::vec("[a-z]{1,8}\\.vn", 0..3),
    ) -> NetworkPolicy {
        NetworkPolicy {
            allowed_domains: domains,
            allowed_cidrs: cidrs,
            allowed_ips: ips,
            origin_ip: origin,
            ..NetworkPolicy::restricted()
        }
    }
}

/// The oracle: a destination is allowed when a listed network or address
/// holds it, compared bit by bit.
fn listed(policy: &NetworkPolicy, resolved: &[IpAddr], to: IpAddr) -> bool {
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(_) => unreachable!("IPv4 only here"),
    };
    let within = |net: &IpNet| {
        let shift = 32 - u32::from(net.prefix_len());
        shift == 32 || bits(net.addr()) >> shift == bits(to) >> shift
    };
    policy.allowed_cidrs.iter().any(within)
        || policy
            .allowed_ips
            .iter()
            .chain(&policy.origin_ip)
            .chain(resolved)
            .any(|&a| a == to)
}

proptest! {
    #[test]
    fn every_listed_destination_passes_and_nothing_else(
        policy in policies(),
        resolved in prop::collection::vec(v4_addr(), 0..3),
        probes in prop::collection::vec(v4_addr(), 1..32),
    ) {
        let rules = Ruleset::new(&policy, ip("10.88.1.2"), &resolved, &[]).unwrap();
        let edges = policy.allowed_cidrs.iter().flat_map(|n| [n.network(), n.broadcast()]);
        for to in probes.into_iter().chain(edges).chain(policy.allowed_ips.iter().copied()) {
            let expected = if listed(&policy, &resolved, to) { Verdict::Accept } else { Verdict::Drop };
            prop_assert_eq!(rules.verdict(to, Transport::Tcp(443)), expected, "{}", to);
        }
    }

    #[test]
    fn the_script_does_not_depend_on_order_or_repetition(
        policy in policies(),
        resolvers in prop::collection::vec(v4_addr(), 0..4),
        seed in any::<u64>(),
    ) {
        let desktop = ip("10.88.1.2");
        let first = Ruleset::new(&policy, desktop, &[], &resolvers).unwrap();
        let mut shuffled = policy.clone();
        let turn = |len: usize| if len == 0 { 0 } else { (seed as usize) % len };
        shuffled.allowed_cidrs.rotate_left(turn(policy.allowed_cidrs.len()));
        shuffled.allowed_cidrs.extend(policy.allowed_cidrs.first().copied());
        shuffled.allowed_ips.reverse();
        let mut resolvers2 = resolvers.clone();
        resolvers2.reverse();
        resolvers2.extend(resolvers.first().copied());
        let second = Ruleset::new(&shuffled, desktop, &[], &resolvers2).unwrap();
        prop_assert_eq!(first.render(), second.render());
        prop_assert_eq!(first.render(), first.render());
        // Merged networks never overlap, as an interval set needs.
        for pair in first.allowed().windows(2) {
            prop_assert!(pair[0].broadcast() < pair[1].network(), "{:?}", pair);
        }
    }
}
