//! The exam desktops' network policy flags, with the exam platform's
//! `.env.worker` names as their environment fallbacks
//! (`docs/network-policy.md`).

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};
use vdi_cluster_core::ValidationError;
use vdi_cluster_core::network::{NetworkPolicy, check_entries, parse_cidr, parse_domain, parse_ip};

use super::ConfigError;

/// `EXAM_RESTRICT_INTERNET` and the lists of what a restricted exam
/// desktop may reach.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkPolicyArgs {
    /// Exam desktops reach only the allowed domains, networks and
    /// addresses (applied by the provisioning program; see
    /// `vdi-cluster network-rules`).
    #[arg(long, env = "EXAM_RESTRICT_INTERNET", default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub exam_restrict_internet: bool,

    /// Domains allowed, comma-separated (`sot.umtoj.edu.vn`), with DNS to
    /// look them up.
    #[arg(long, env = "EXAM_ALLOWED_DOMAINS", value_name = "NAME[,NAME]")]
    pub exam_allowed_domains: Option<String>,

    /// Networks allowed, comma-separated (`103.90.220.0/22,…`).
    #[arg(long, env = "EXAM_ALLOWED_CIDRS", value_name = "CIDR[,CIDR]")]
    pub exam_allowed_cidrs: Option<String>,

    /// Addresses allowed, comma-separated.
    #[arg(long, env = "EXAM_ALLOWED_IPS", value_name = "IP[,IP]")]
    pub exam_allowed_ips: Option<String>,

    /// The exam site's own address, allowed.
    #[arg(long, env = "EXAM_ORIGIN_IP", value_name = "IP")]
    pub exam_origin_ip: Option<String>,

    /// A desktop whose rules cannot be applied is not started.
    #[arg(long, env = "EXAM_FIREWALL_ENFORCE_STRICT", default_value_t = true,
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub exam_firewall_enforce_strict: bool,
}

fn list<T>(
    field: &str,
    text: Option<&str>,
    parse: fn(&str, &str) -> Result<T, ValidationError>,
) -> Result<Vec<T>, ValidationError> {
    let entries: Vec<&str> = text
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    check_entries(field, entries.len())?;
    entries.into_iter().map(|e| parse(field, e)).collect()
}

impl NetworkPolicyArgs {
    /// The policy, each list checked by core (an empty variable is an
    /// empty list); an error names the variable.
    pub fn policy(&self) -> Result<NetworkPolicy, ConfigError> {
        let parse = || -> Result<NetworkPolicy, ValidationError> {
            let origin = self
                .exam_origin_ip
                .as_deref()
                .map(str::trim)
                .filter(|ip| !ip.is_empty());
            Ok(NetworkPolicy {
                restrict_internet: self.exam_restrict_internet,
                allowed_domains: list(
                    "EXAM_ALLOWED_DOMAINS",
                    self.exam_allowed_domains.as_deref(),
                    parse_domain,
                )?,
                allowed_cidrs: list(
                    "EXAM_ALLOWED_CIDRS",
                    self.exam_allowed_cidrs.as_deref(),
                    parse_cidr,
                )?,
                allowed_ips: list(
                    "EXAM_ALLOWED_IPS",
                    self.exam_allowed_ips.as_deref(),
                    parse_ip,
                )?,
                origin_ip: origin
                    .map(|ip| parse_ip("EXAM_ORIGIN_IP", ip))
                    .transpose()?,
                enforce_strict: self.exam_firewall_enforce_strict,
            })
        };
        parse().map_err(|e| ConfigError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbooks_variables_make_a_policy() {
        let args = NetworkPolicyArgs {
            exam_restrict_internet: true,
            exam_allowed_domains: Some("sot.umtoj.edu.vn".into()),
            exam_allowed_cidrs: Some("103.90.220.0/22, 42.1.76.128/28,".into()),
            exam_allowed_ips: Some(String::new()),
            exam_origin_ip: Some("203.210.213.198".into()),
            exam_firewall_enforce_strict: true,
        };
        let policy = args.policy().unwrap();
        assert_eq!(policy.allowed_cidrs.len(), 2);
        assert!(policy.allowed_ips.is_empty());
        assert!(policy.allows("203.210.213.198".parse().unwrap()));
        assert!(!policy.allows("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn a_bad_entry_names_its_variable() {
        let args = NetworkPolicyArgs {
            exam_allowed_cidrs: Some("103.90.220.0/22,42.1.76.129/28".into()),
            ..Default::default()
        };
        let e = args.policy().unwrap_err().to_string();
        assert!(
            e.contains("EXAM_ALLOWED_CIDRS") && e.contains("42.1.76.128/28"),
            "{e}"
        );
        let args = NetworkPolicyArgs {
            exam_origin_ip: Some("origin".into()),
            ..Default::default()
        };
        assert!(
            args.policy()
                .unwrap_err()
                .to_string()
                .contains("EXAM_ORIGIN_IP")
        );
    }
}
