//! Node agent → provisioning program: an exam machine's network policy,
//! in the provisioning program's environment as [`NETWORK_POLICY_VARIABLE`]
//! and read back by `vdi-cluster network-rules`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::ValidationError;
use vdi_cluster_core::network::{NetworkPolicy, check_entries, parse_cidr, parse_domain, parse_ip};

/// The provisioning program's variable holding the policy as JSON (set
/// only when the policy restricts).
pub const NETWORK_POLICY_VARIABLE: &str = "VDI_NETWORK_POLICY";

/// Where an exam desktop may connect (`docs/network-policy.md`): the exam
/// platform's `EXAM_*` variables in one object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyJson {
    /// Outbound traffic limited to the lists (`EXAM_RESTRICT_INTERNET`).
    pub restrict_internet: bool,
    /// Domains allowed, with DNS to look them up (`EXAM_ALLOWED_DOMAINS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1024)]
    pub allowed_domains: Vec<String>,
    /// Networks allowed, `103.90.220.0/22` (`EXAM_ALLOWED_CIDRS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1024)]
    pub allowed_cidrs: Vec<String>,
    /// Addresses allowed (`EXAM_ALLOWED_IPS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1024)]
    pub allowed_ips: Vec<String>,
    /// The exam site's own address, allowed (`EXAM_ORIGIN_IP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_ip: Option<String>,
    /// A desktop whose rules cannot be applied is not started
    /// (`EXAM_FIREWALL_ENFORCE_STRICT`; default true).
    #[serde(default = "strict_by_default")]
    pub enforce_strict: bool,
}

fn strict_by_default() -> bool {
    true
}

fn each<T>(
    field: &str,
    items: &[String],
    parse: fn(&str, &str) -> Result<T, ValidationError>,
) -> Result<Vec<T>, ValidationError> {
    check_entries(field, items.len())?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse(&format!("{field}[{i}]"), item))
        .collect()
}

impl NetworkPolicyJson {
    /// The policy, validated by core; errors name `{prefix}.allowedCidrs[2]`
    /// and the like.
    pub fn into_policy(&self, prefix: &str) -> Result<NetworkPolicy, ValidationError> {
        let field = |name: &str| format!("{prefix}.{name}");
        Ok(NetworkPolicy {
            restrict_internet: self.restrict_internet,
            allowed_domains: each(
                &field("allowedDomains"),
                &self.allowed_domains,
                parse_domain,
            )?,
            allowed_cidrs: each(&field("allowedCidrs"), &self.allowed_cidrs, parse_cidr)?,
            allowed_ips: each(&field("allowedIps"), &self.allowed_ips, parse_ip)?,
            origin_ip: self
                .origin_ip
                .as_deref()
                .map(|ip| parse_ip(&field("originIp"), ip))
                .transpose()?,
            enforce_strict: self.enforce_strict,
        })
    }
}

impl From<&NetworkPolicy> for NetworkPolicyJson {
    fn from(policy: &NetworkPolicy) -> Self {
        Self {
            restrict_internet: policy.restrict_internet,
            allowed_domains: policy.allowed_domains.clone(),
            allowed_cidrs: policy
                .allowed_cidrs
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_ips: policy.allowed_ips.iter().map(ToString::to_string).collect(),
            origin_ip: policy.origin_ip.map(|ip| ip.to_string()),
            enforce_strict: policy.enforce_strict,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_names_and_a_round_trip() {
        let body = json!({
            "restrictInternet": true,
            "allowedDomains": ["sot.umtoj.edu.vn"],
            "allowedCidrs": ["103.90.220.0/22"],
            "allowedIps": ["10.0.0.7"],
            "originIp": "203.210.213.198",
            "enforceStrict": false
        });
        let parsed: NetworkPolicyJson = serde_json::from_value(body.clone()).unwrap();
        let policy = parsed.into_policy("networkPolicy").unwrap();
        assert_eq!(
            serde_json::to_value(NetworkPolicyJson::from(&policy)).unwrap(),
            body
        );
        let strict: NetworkPolicyJson =
            serde_json::from_value(json!({"restrictInternet": true})).unwrap();
        assert!(strict.enforce_strict, "strict unless said otherwise");
    }

    #[test]
    fn a_bad_entry_is_named_with_its_index() {
        let parsed = NetworkPolicyJson {
            restrict_internet: true,
            allowed_cidrs: vec!["10.0.0.0/8".into(), "10.0.0.1/8".into()],
            ..Default::default()
        };
        let e = parsed.into_policy("networkPolicy").unwrap_err();
        assert_eq!(e.field, "networkPolicy.allowedCidrs[1]");
    }
}
