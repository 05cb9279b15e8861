//! Who asks to register or heartbeat a worker ([`Registrant`]), what that
//! lets it change ([`check_relocation`]), and the `apiBaseUrl` syntax
//! ([`api_base_url_host`]).
//!
//! The control plane sends its cluster token to a worker's `apiBaseUrl`
//! with every allocation. Whoever may move that URL to another host may
//! therefore collect the token. The shared worker token is held by every
//! worker, so it proves "some worker", not "this worker": a caller holding
//! only that (or nothing, where anonymous heartbeats are allowed for
//! development) may register a new worker anywhere, but may not move a
//! known one to another host. The worker's own credential, or an operator,
//! may.

use super::WorkerDescription;
use crate::ids::WorkerId;

/// Who asks to register, or heartbeat for, a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Registrant {
    /// No credential (only where anonymous heartbeats are allowed).
    Anonymous,
    /// The shared worker token (`WORKER_HEARTBEAT_TOKEN`): some worker.
    SharedToken,
    /// The worker's own credential: this worker.
    OwnCredential,
    /// An operator, or trusted code in the same process.
    Operator,
}

impl Registrant {
    /// Whether this registrant may move a known worker to another host.
    pub fn may_move_host(self) -> bool {
        match self {
            Self::Anonymous | Self::SharedToken => false,
            Self::OwnCredential | Self::Operator => true,
        }
    }
}

/// A registrant tried to move a worker's `apiBaseUrl` to another host
/// without the right to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "apiBaseUrl: worker {worker} is registered at host {from}; moving it to host {to} needs an admin or the worker's own credential"
)]
pub struct RelocationRefused {
    /// The worker.
    pub worker: WorkerId,
    /// The host it is registered at.
    pub from: String,
    /// The host it asked to move to.
    pub to: String,
}

/// Checks that `who` may change `stored` into `incoming` for `worker`: an
/// empty incoming `apiBaseUrl` keeps the stored one, and a new host needs
/// [`Registrant::may_move_host`]. The scheme, port and path may change.
pub fn check_relocation(
    worker: &WorkerId,
    stored: &WorkerDescription,
    incoming: &WorkerDescription,
    who: Registrant,
) -> Result<(), RelocationRefused> {
    if who.may_move_host() || incoming.api_base_url.is_empty() {
        return Ok(());
    }
    let (Some(from), Some(to)) = (
        api_base_url_host(&stored.api_base_url),
        api_base_url_host(&incoming.api_base_url),
    ) else {
        // Nothing stored yet (or stored before URLs were checked): the
        // first URL is not a move.
        return Ok(());
    };
    if from == to {
        Ok(())
    } else {
        Err(RelocationRefused {
            worker: worker.clone(),
            from,
            to,
        })
    }
}

/// The host of an absolute `http://` or `https://` URL, lower-cased;
/// `None` when `url` is not one. Strict: no user information (`a@b`), no
/// backslash, a non-empty host name or IPv4 address (letters, digits,
/// `-` and `.`, starting with a letter or digit; IPv6 literals are not
/// taken: give the worker a name), and an optional port of 1 to 65535 (no
/// leading zero). The OpenAPI document states the same as a pattern.
pub fn api_base_url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains(['@', '\\']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let label_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    if !host.starts_with(|c: char| c.is_ascii_alphanumeric()) || !host.chars().all(label_ok) {
        return None;
    }
    if let Some(p) = port
        && (p.is_empty()
            || p.starts_with('0')
            || !p.chars().all(|c| c.is_ascii_digit())
            || !matches!(p.parse::<u32>(), Ok(1..=65_535)))
    {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(url: &str) -> WorkerDescription {
        WorkerDescription {
            api_base_url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn hosts_of_good_and_bad_urls() {
        let host = |u| api_base_url_host(u);
        assert_eq!(host("http://10.0.0.5:3000").as_deref(), Some("10.0.0.5"));
        assert_eq!(
            host("https://Worker2.Example.edu.vn/api?x#y").as_deref(),
            Some("worker2.example.edu.vn")
        );
        assert_eq!(host("http://[::1]:8080/"), None);
        for bad in [
            "",
            "http://",
            "http:///path",
            "ftp://host",
            "//host",
            "http://host:0",
            "http://host:65536",
            "http://host:",
            "http://host:x",
            "http://host:080",
            "http://a@evil.example",
            "http://good.example\\@evil.example",
            "http://ho st",
            "http://[zz]",
            "http://[::1",
            "http://-host",
            "http://hôte",
        ] {
            assert_eq!(host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_own_credentials_and_operators_move_a_worker_to_another_host() {
        let id = WorkerId::parse("code", "w1").unwrap();
        let stored = described("http://10.0.0.5:3000");
        let other_host = described("http://evil.example:3000");
        let same_host = described("https://10.0.0.5:4000/v2");
        for who in [Registrant::Anonymous, Registrant::SharedToken] {
            let e = check_relocation(&id, &stored, &other_host, who).unwrap_err();
            assert_eq!(e.to, "evil.example");
            assert!(e.to_string().starts_with("apiBaseUrl: "));
            assert!(check_relocation(&id, &stored, &same_host, who).is_ok());
            assert!(check_relocation(&id, &stored, &described(""), who).is_ok());
            assert!(check_relocation(&id, &described(""), &other_host, who).is_ok());
        }
        for who in [Registrant::OwnCredential, Registrant::Operator] {
            assert!(check_relocation(&id, &stored, &other_host, who).is_ok());
        }
    }
}
