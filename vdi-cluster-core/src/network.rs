//! An exam machine's network policy: where its desktop may connect.
//!
//! The exam platform restricts its exam desktops' outbound traffic
//! (`EXAM_RESTRICT_INTERNET`) to allowed domains, networks and addresses
//! (`EXAM_ALLOWED_DOMAINS`, `EXAM_ALLOWED_CIDRS`, `EXAM_ALLOWED_IPS`) and
//! the exam site's own address (`EXAM_ORIGIN_IP`), and refuses to start a
//! desktop whose rules could not be applied when
//! `EXAM_FIREWALL_ENFORCE_STRICT` is set. [`NetworkPolicy`] is that
//! policy, validated; the node agent hands it to the provisioning
//! program, and `vdi-cluster network-rules` turns it into firewall rules
//! (`docs/network-policy.md`).
//!
//! Pure: the parsers name the field at fault, so one policy can come from
//! environment variables or a JSON body alike. A policy also comes with an
//! exam booked on the calendar ([`Exam::network_policy`](crate::Exam)),
//! checked by [`NetworkPolicy::validate`] and stored with the exam; which
//! policy a desktop gets, the exam's or the node's, is [`precedence`].
//!
//! ```
//! use vdi_cluster_core::network::{NetworkPolicy, parse_cidr};
//!
//! let cidr = parse_cidr("EXAM_ALLOWED_CIDRS", "103.90.220.0/22").unwrap();
//! let policy = NetworkPolicy {
//!     allowed_cidrs: vec![cidr],
//!     ..NetworkPolicy::restricted()
//! };
//! assert!(policy.allows("103.90.223.255".parse().unwrap()));
//! assert!(!policy.allows("8.8.8.8".parse().unwrap()));
//! let err = parse_cidr("EXAM_ALLOWED_CIDRS", "42.1.76.129/28").unwrap_err();
//! assert!(err.message.contains("42.1.76.128/28"));
//! ```

pub mod precedence;

use std::collections::HashSet;
use std::hash::Hash;
use std::net::IpAddr;

pub use ipnet::IpNet;
pub use precedence::{PolicySource, effective_policy};
use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// Most entries in one list of a policy.
pub const MAX_ENTRIES: usize = 1024;
/// Longest domain name, in bytes.
pub const MAX_DOMAIN_LEN: usize = 253;

/// Where an exam desktop may connect. Stored with an exam in this shape
/// (camelCase, as the API writes it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    /// Outbound traffic limited to what is listed (otherwise everything is
    /// allowed and the lists are not used).
    pub restrict_internet: bool,
    /// Domains allowed: their addresses when the rules are applied, and
    /// DNS to the node's resolvers so the desktop can look them up.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Networks allowed.
    #[serde(default)]
    pub allowed_cidrs: Vec<IpNet>,
    /// Addresses allowed.
    #[serde(default)]
    pub allowed_ips: Vec<IpAddr>,
    /// The exam site's own address, allowed.
    #[serde(default)]
    pub origin_ip: Option<IpAddr>,
    /// A desktop whose rules cannot be applied is not started.
    pub enforce_strict: bool,
}

impl NetworkPolicy {
    /// A restricted, strict policy with nothing allowed yet.
    pub fn restricted() -> Self {
        Self {
            restrict_internet: true,
            enforce_strict: true,
            ..Self::default()
        }
    }

    /// Every network a restricted desktop may reach by address: the
    /// allowed networks, addresses and the origin, as networks (without
    /// the domains, which resolve when rules are applied).
    pub fn allowed_networks(&self) -> Vec<IpNet> {
        let hosts = self
            .allowed_ips
            .iter()
            .chain(self.origin_ip.as_ref())
            .map(|&ip| IpNet::from(ip));
        self.allowed_cidrs.iter().copied().chain(hosts).collect()
    }

    /// Whether the policy lets a desktop reach `ip` by address (always,
    /// when it does not restrict).
    pub fn allows(&self, ip: IpAddr) -> bool {
        !self.restrict_internet || self.allowed_networks().iter().any(|n| n.contains(&ip))
    }

    /// Checks a policy given as values (an exam's, or one read back from a
    /// store export): at most [`MAX_ENTRIES`] per list, domains in their
    /// lower-case form, networks without host bits, no entry twice, and a
    /// restricted policy that allows something. Errors name the field
    /// under `prefix`: `networkPolicy.allowedCidrs[2]`.
    pub fn validate(&self, prefix: &str) -> Result<(), ValidationError> {
        let field = |name: &str| format!("{prefix}.{name}");
        let domains = field("allowedDomains");
        check_list(
            &domains,
            &self.allowed_domains,
            |f, d| match parse_domain(f, d)? {
                clean if &clean == d => Ok(()),
                clean => Err(ValidationError::new(f, format!("write it as `{clean}`"))),
            },
        )?;
        check_list(&field("allowedCidrs"), &self.allowed_cidrs, |f, net| {
            if net.trunc() == *net {
                Ok(())
            } else {
                Err(ValidationError::new(
                    f,
                    format!("`{net}` has host bits set: the network is {}", net.trunc()),
                ))
            }
        })?;
        check_list(&field("allowedIps"), &self.allowed_ips, |_, _| Ok(()))?;
        let allows_nothing = self.allowed_domains.is_empty()
            && self.allowed_cidrs.is_empty()
            && self.allowed_ips.is_empty()
            && self.origin_ip.is_none();
        if self.restrict_internet && allows_nothing {
            return Err(ValidationError::new(
                field("restrictInternet"),
                "a restricted desktop must reach something: give the exam site's originIp, \
                 or allowed domains, CIDRs or IPs",
            ));
        }
        Ok(())
    }
}

/// Checks a list's length, each entry (named `field[i]`) and that none
/// repeats an earlier one.
fn check_list<T: Eq + Hash>(
    field: &str,
    items: &[T],
    check: impl Fn(&str, &T) -> Result<(), ValidationError>,
) -> Result<(), ValidationError> {
    check_entries(field, items.len())?;
    let mut seen = HashSet::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = format!("{field}[{i}]");
        check(&name, item)?;
        if !seen.insert(item) {
            return Err(ValidationError::new(name, "listed twice"));
        }
    }
    Ok(())
}

/// Checks that a list holds at most [`MAX_ENTRIES`].
pub fn check_entries(field: &str, len: usize) -> Result<(), ValidationError> {
    if len > MAX_ENTRIES {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_ENTRIES} entries, got {len}"),
        ));
    }
    Ok(())
}

/// An IPv4 or IPv6 address.
pub fn parse_ip(field: &str, text: &str) -> Result<IpAddr, ValidationError> {
    text.trim().parse().map_err(|_| {
        ValidationError::new(field, format!("`{text}` is not an IPv4 or IPv6 address"))
    })
}

/// A network `address/prefix` (a bare address is a one-address network).
/// Host bits must be zero: `42.1.76.129/28` is refused, naming the
/// network meant.
pub fn parse_cidr(field: &str, text: &str) -> Result<IpNet, ValidationError> {
    let text = text.trim();
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match text.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(ValidationError::new(
                    field,
                    format!("`{text}` is not a network such as 103.90.220.0/22"),
                ));
            }
        },
    };
    if net.trunc() != net {
        return Err(ValidationError::new(
            field,
            format!("`{text}` has host bits set: the network is {}", net.trunc()),
        ));
    }
    Ok(net)
}

/// A domain name (`sot.umtoj.edu.vn`), lower-cased: labels of letters,
/// digits and inner hyphens, at most 63 bytes each and
/// [`MAX_DOMAIN_LEN`] in all; a trailing dot is dropped. Wildcards are
/// refused: a firewall allows addresses, and only names resolve to them.
pub fn parse_domain(field: &str, text: &str) -> Result<String, ValidationError> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| ValidationError::new(field, format!("`{text}` {why}"));
    if name.is_empty() {
        return Err(bad("is not a domain name"));
    }
    if name.len() > MAX_DOMAIN_LEN {
        return Err(bad("is longer than 253 bytes"));
    }
    if name.contains('*') {
        return Err(bad(
            "is a wildcard: list each name (or the site's networks in the CIDRs)",
        ));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !name.split('.').all(label_ok) {
        return Err(bad(
            "is not a domain name (labels of letters, digits and inner hyphens)",
        ));
    }
    if name.parse::<IpAddr>().is_ok()
        || name
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("is an address: list it among the IPs"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbooks_lists_parse() {
        for cidr in "103.90.220.0/22,103.151.240.0/23,42.1.76.128/28,1.55.145.0/24".split(',') {
            parse_cidr("EXAM_ALLOWED_CIDRS", cidr).unwrap();
        }
        assert_eq!(
            parse_domain("EXAM_ALLOWED_DOMAINS", " SOT.umtoj.edu.vn. ").unwrap(),
            "sot.umtoj.edu.vn"
        );
        parse_ip("EXAM_ORIGIN_IP", "203.210.213.198").unwrap();
        assert_eq!(
            parse_cidr("x", "2001:db8::1").unwrap(),
            "2001:db8::1/128".parse::<IpNet>().unwrap()
        );
    }

    #[test]
    fn bad_entries_name_the_field() {
        let e = parse_cidr("EXAM_ALLOWED_CIDRS", "10.0.0.0/33").unwrap_err();
        assert_eq!(e.field, "EXAM_ALLOWED_CIDRS");
        let e = parse_cidr("f", "10.0.0.1/8").unwrap_err();
        assert!(e.message.contains("10.0.0.0/8"), "{e}");
        for bad in [
            "", "*.edu.vn", "-a.vn", "a..vn", "a_b.vn", "10.0.0.1", "é.vn",
        ] {
            let e = parse_domain("networkPolicy.allowedDomains[0]", bad).unwrap_err();
            assert_eq!(e.field, "networkPolicy.allowedDomains[0]", "{bad}");
        }
        assert!(parse_domain("f", &format!("{}.vn", "a".repeat(64))).is_err());
        assert!(parse_ip("EXAM_ALLOWED_IPS", "1.2.3").is_err());
        assert!(check_entries("f", MAX_ENTRIES + 1).is_err());
    }

    #[test]
    fn an_open_policy_allows_everything() {
        let open = NetworkPolicy::default();
        assert!(open.allows("8.8.8.8".parse().unwrap()));
        let closed = NetworkPolicy {
            allowed_ips: vec!["10.0.0.1".parse().unwrap()],
            origin_ip: Some("203.210.213.198".parse().unwrap()),
            ..NetworkPolicy::restricted()
        };
        assert!(closed.allows("10.0.0.1".parse().unwrap()));
        assert!(closed.allows("203.210.213.198".parse().unwrap()));
        assert!(!closed.allows("10.0.0.2".parse().unwrap()));
    }

    fn exam_policy() -> NetworkPolicy {
        NetworkPolicy {
            allowed_domains: vec!["sot.umtoj.edu.vn".into()],
            allowed_cidrs: vec![
                "103.90.220.0/22".parse().unwrap(),
                "42.1.76.128/28".parse().unwrap(),
            ],
            allowed_ips: vec!["10.0.0.7".parse().unwrap()],
            origin_ip: Some("203.210.213.198".parse().unwrap()),
            ..NetworkPolicy::restricted()
        }
    }

    #[test]
    fn validation_names_the_entry_at_fault() {
        exam_policy().validate("networkPolicy").unwrap();
        NetworkPolicy::default().validate("networkPolicy").unwrap();
        let field = |p: NetworkPolicy| p.validate("networkPolicy").unwrap_err().field;
        let mut p = exam_policy();
        p.allowed_cidrs.push("10.0.0.1/8".parse().unwrap());
        assert_eq!(field(p), "networkPolicy.allowedCidrs[2]");
        let mut p = exam_policy();
        p.allowed_cidrs.push("103.90.220.0/22".parse().unwrap());
        assert_eq!(field(p), "networkPolicy.allowedCidrs[2]");
        let mut p = exam_policy();
        p.allowed_domains.push("SOT.umtoj.edu.vn".into());
        assert_eq!(field(p), "networkPolicy.allowedDomains[1]");
        let mut p = exam_policy();
        p.allowed_ips = vec!["10.0.0.7".parse().unwrap(); MAX_ENTRIES + 1];
        assert_eq!(field(p), "networkPolicy.allowedIps");
        assert_eq!(
            field(NetworkPolicy::restricted()),
            "networkPolicy.restrictInternet"
        );
    }

    #[test]
    fn the_stored_shape_is_the_apis_and_old_fields_default() {
        let json = serde_json::to_value(exam_policy()).unwrap();
        assert_eq!(json["allowedCidrs"][0], "103.90.220.0/22");
        assert_eq!(json["originIp"], "203.210.213.198");
        assert_eq!(json["enforceStrict"], true);
        let back: NetworkPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, exam_policy());
        let sparse: NetworkPolicy = serde_json::from_value(
            serde_json::json!({"restrictInternet": true, "enforceStrict": false, "allowedIps": ["10.0.0.1"]}),
        )
        .unwrap();
        assert!(sparse.allowed_cidrs.is_empty() && sparse.origin_ip.is_none());
    }
}
