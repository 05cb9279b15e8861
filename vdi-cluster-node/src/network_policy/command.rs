//! `vdi-cluster network-rules apply|remove|print --address ADDR`: the
//! rules of one exam desktop, applied with `nft`.
//!
//! The provisioning program runs it with the policy the worker put in its
//! environment (`VDI_NETWORK_POLICY`). `apply` resolves the allowed domains
//! (their addresses now) and finds the node's resolvers (`--dns`, or the
//! non-loopback `nameserver` lines of `/etc/resolv.conf`), then replaces
//! the desktop's table in one `nft -f` run. Under a strict policy any
//! failure (a domain that does not resolve, `nft` missing or refusing)
//! ends with an error, so the program fails the start; otherwise it is a
//! warning and the desktop starts unrestricted as far as the rules could
//! not say. `remove` deletes the table (none is fine); `print` writes the
//! script without applying it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;

use clap::{Args, ValueEnum};
use tokio::io::AsyncWriteExt;
use vdi_cluster_core::network::NetworkPolicy;
use vdi_cluster_protocol::node::{NETWORK_POLICY_VARIABLE, NetworkPolicyJson};

use super::rules::{Ruleset, removal};

/// What to do with the desktop's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkRulesAction {
    /// Replace the desktop's rules with the policy's.
    Apply,
    /// Remove the desktop's rules.
    Remove,
    /// Print the `nft` script of `apply`.
    Print,
}

/// Options of `vdi-cluster network-rules`.
#[derive(Debug, Clone, Args)]
pub struct NetworkRulesArgs {
    /// `apply`, `remove` or `print`.
    #[arg(value_enum)]
    pub action: NetworkRulesAction,

    /// The desktop's address (a container's, a VM's).
    #[arg(long, value_name = "ADDR")]
    pub address: IpAddr,

    /// The policy as JSON, as the worker hands it to the provisioning
    /// program; empty: the desktop is not restricted.
    #[arg(long, env = NETWORK_POLICY_VARIABLE, default_value = "", value_name = "JSON")]
    pub policy: String,

    /// A resolver the desktop may ask for the allowed domains; repeat.
    /// Default: the non-loopback name servers of `/etc/resolv.conf`.
    #[arg(long = "dns", value_name = "ADDR")]
    pub dns: Vec<IpAddr>,

    /// The `nft` program.
    #[arg(long, env = "VDI_NFT", default_value = "nft", value_name = "PATH")]
    pub nft: PathBuf,
}

/// The rules could not be applied (or the policy is unreadable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkRulesError {
    /// `VDI_NETWORK_POLICY` is not a valid policy.
    #[error("{NETWORK_POLICY_VARIABLE}: {0}")]
    Policy(String),
    /// A strict policy's rules could not be applied.
    #[error("the exam desktop's network rules could not be applied: {0}")]
    Strict(String),
}

/// Reads the policy of `VDI_NETWORK_POLICY` (empty: not restricted).
pub fn read_policy(text: &str) -> Result<NetworkPolicy, NetworkRulesError> {
    if text.trim().is_empty() {
        return Ok(NetworkPolicy::default());
    }
    let json: NetworkPolicyJson =
        serde_json::from_str(text).map_err(|e| NetworkRulesError::Policy(e.to_string()))?;
    json.into_policy(NETWORK_POLICY_VARIABLE)
        .map_err(|e| NetworkRulesError::Policy(e.to_string()))
}

/// The non-loopback `nameserver` addresses of a `resolv.conf`.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// Runs `nft -f -` with `script` on its standard input.
pub async fn nft(program: &PathBuf, script: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new(program)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| format!("cannot write to {}: {e}", program.display()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} -f -: {}: {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

async fn resolve(domains: &[String]) -> (Vec<IpAddr>, Vec<String>) {
    let mut found = Vec::new();
    let mut failed = Vec::new();
    for domain in domains {
        match tokio::net::lookup_host((domain.as_str(), 0)).await {
            Ok(addrs) => found.extend(addrs.map(|a| a.ip())),
            Err(e) => failed.push(format!("{domain} does not resolve: {e}")),
        }
    }
    (found, failed)
}

/// Runs the command; answers what it did (a warning included when a
/// policy that is not strict could not be applied whole).
pub async fn run(args: &NetworkRulesArgs) -> Result<String, NetworkRulesError> {
    let policy = read_policy(&args.policy)?;
    if args.action == NetworkRulesAction::Remove {
        return Ok(match nft(&args.nft, &removal(args.address)).await {
            Ok(()) => format!("network rules of {} removed", args.address),
            Err(e) => format!("no network rules of {} removed ({e})", args.address),
        });
    }
    let (resolved, mut problems) = resolve(&policy.allowed_domains).await;
    let resolvers = if args.dns.is_empty() {
        nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else {
        args.dns.clone()
    };
    let Some(rules) = Ruleset::new(&policy, args.address, &resolved, &resolvers) else {
        return Ok(format!("{} is not restricted: no rules", args.address));
    };
    let script = rules.render();
    if args.action == NetworkRulesAction::Print {
        return Ok(script);
    }
    if let Err(e) = nft(&args.nft, &script).await {
        problems.push(e);
    }
    match (problems.is_empty(), policy.enforce_strict) {
        (true, _) => Ok(format!(
            "network rules of {} applied: {} networks allowed",
            args.address,
            rules.allowed().len()
        )),
        (false, true) => Err(NetworkRulesError::Strict(problems.join("; "))),
        (false, false) => Ok(format!(
            "warning: network rules of {} not applied whole (the policy is not strict): {}",
            args.address,
            problems.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_skip_loopback_and_comments() {
        let conf = "# generated\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nnameserver fe80::1%eth0\nsearch lan\n";
        assert_eq!(
            nameservers(conf),
            vec![
                "1.1.1.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn the_policy_variable_is_read_and_checked() {
        assert!(!read_policy("").unwrap().restrict_internet);
        let p = read_policy(r#"{"restrictInternet":true,"allowedIps":["10.0.0.1"]}"#).unwrap();
        assert!(p.restrict_internet && p.enforce_strict);
        let e = read_policy(r#"{"restrictInternet":true,"allowedIps":["x"]}"#).unwrap_err();
        assert!(
            e.to_string().contains("VDI_NETWORK_POLICY.allowedIps[0]"),
            "{e}"
        );
    }
}
