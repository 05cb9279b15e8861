//! An exam's network policy: every policy of well-formed, distinct entries
//! validates and survives the stored JSON unchanged; one bad entry,
//! wherever it sits, is the one the error names.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use vdi_cluster_core::network::{IpNet, NetworkPolicy, effective_policy};

fn net() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 8u8..=32).prop_map(|(bits, prefix)| {
        IpNet::new(IpAddr::V4(Ipv4Addr::from(bits)), prefix)
            .expect("a prefix of at most 32")
            .trunc()
    })
}

fn domain() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z][a-z0-9-]{0,8}[a-z0-9]", 2..4).prop_map(|l| l.join("."))
}

fn distinct<T: Ord + Clone>(items: Vec<T>) -> Vec<T> {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

prop_compose! {
    fn policy()(
        domains in proptest::collection::vec(domain(), 0..5),
        cidrs in proptest::collection::vec(net(), 0..6),
        ips in proptest::collection::vec(any::<u32>(), 0..6),
        origin in proptest::option::of(any::<u32>()),
        strict in any::<bool>(),
    ) -> NetworkPolicy {
        NetworkPolicy {
            restrict_internet: true,
            allowed_domains: distinct(domains),
            allowed_cidrs: distinct(cidrs),
            allowed_ips: distinct(ips).into_iter().map(|b| IpAddr::V4(b.into())).collect(),
            origin_ip: Some(origin.unwrap_or(1)).map(|b| IpAddr::V4(b.into())),
            enforce_strict: strict,
        }
    }
}

proptest! {
    #[test]
    fn well_formed_policies_validate_and_round_trip(p in policy()) {
        p.validate("networkPolicy").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: NetworkPolicy = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &p);
    }

    #[test]
    fn the_bad_entry_is_the_one_named(p in policy(), at in any::<prop::sample::Index>(), bits in any::<u32>()) {
        let mut p = p;
        // A /16 with a host bit set, somewhere in the list.
        let bad = IpNet::new(IpAddr::V4(Ipv4Addr::from(bits | 1)), 16).unwrap();
        let i = at.index(p.allowed_cidrs.len() + 1);
        p.allowed_cidrs.insert(i, bad);
        let e = p.validate("networkPolicy").unwrap_err();
        prop_assert_eq!(e.field, format!("networkPolicy.allowedCidrs[{i}]"));
    }

    #[test]
    fn an_exam_policy_never_weakens_a_strict_node(node in policy(), exam in policy()) {
        let (applied, _) = effective_policy(&node, Some(&exam));
        prop_assert!(applied.enforce_strict >= node.enforce_strict);
        prop_assert!(applied.enforce_strict >= exam.enforce_strict);
        prop_assert_eq!(&applied.allowed_cidrs, &exam.allowed_cidrs);
    }
}
