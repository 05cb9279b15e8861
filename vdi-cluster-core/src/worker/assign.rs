//! Codes the control plane assigns (as minicloud's registration: the code a
//! worker gets may differ from the one it asked for).
//!
//! A worker that registers without a code gets one derived from its host
//! name (or display name, or the host of its URL): readable, and the same
//! every time the same host registers, so a restarted worker finds its
//! record again. When that code — or a requested one — belongs to a worker
//! on another host, the next candidates add a random suffix. Uniqueness
//! across replicas comes from the backend's insert-if-absent, not from
//! here: this module only proposes.

use super::{HostInfo, WorkerDescription, api_base_url_host};
use crate::ids::{MAX_WORKER_CODE_LEN, WorkerId};

/// The code used when nothing in a registration yields one.
pub const FALLBACK_CODE: &str = "worker";
/// Candidates tried before a registration gives up.
pub const ASSIGN_ATTEMPTS: usize = 8;
/// Hex digits of a candidate's random suffix.
const SUFFIX_LEN: usize = 6;

/// `text` as a worker code: lower case, runs of other characters as one
/// `-`, trimmed to what leaves room for a suffix; `None` when nothing
/// remains.
fn slug(text: &str) -> Option<WorkerId> {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(MAX_WORKER_CODE_LEN - SUFFIX_LEN - 1);
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    WorkerId::parse("code", trimmed).ok()
}

/// The first code to try: the requested one, else one derived from the
/// host name, the display name or the URL's host, else [`FALLBACK_CODE`].
pub fn base_code(
    requested: Option<&WorkerId>,
    description: &WorkerDescription,
    host: &HostInfo,
) -> WorkerId {
    if let Some(code) = requested {
        return code.clone();
    }
    let derived = host
        .hostname
        .as_deref()
        .and_then(slug)
        .or_else(|| slug(&description.name))
        .or_else(|| api_base_url_host(&description.api_base_url).and_then(|h| slug(&h)));
    derived.unwrap_or_else(|| WorkerId::parse("code", FALLBACK_CODE).expect("a valid code"))
}

/// Candidate `attempt` (0 is `base` itself) with the random `nonce`:
/// `base-<6 hex digits>`, the base shortened to fit.
pub fn candidate(base: &WorkerId, attempt: usize, nonce: u64) -> WorkerId {
    if attempt == 0 {
        return base.clone();
    }
    let suffix = format!("{:06x}", nonce & 0xff_ffff);
    let mut stem = base.as_str().to_owned();
    stem.truncate(MAX_WORKER_CODE_LEN - SUFFIX_LEN - 1);
    let stem = stem.trim_end_matches(['-', '.', '_']);
    WorkerId::parse("code", format!("{stem}-{suffix}")).expect("a valid code")
}

/// Whether a stored worker described by `stored` is the one now
/// registering as `incoming`: the same host in both URLs (or no URL to
/// compare). Another host means another worker, which keeps its code.
pub fn same_worker(stored: &WorkerDescription, incoming: &WorkerDescription) -> bool {
    match (
        api_base_url_host(&stored.api_base_url),
        api_base_url_host(&incoming.api_base_url),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(name: &str, url: &str) -> WorkerDescription {
        WorkerDescription {
            name: name.into(),
            api_base_url: url.into(),
            ..WorkerDescription::default()
        }
    }

    #[test]
    fn codes_come_from_the_host_name_then_the_name_then_the_url() {
        let host = HostInfo {
            hostname: Some("Node1.Example.com".into()),
            ..HostInfo::default()
        };
        let d = described("Worker Node 2", "http://10.0.0.5:8081");
        assert_eq!(base_code(None, &d, &host).as_str(), "node1.example.com");
        assert_eq!(
            base_code(None, &d, &HostInfo::default()).as_str(),
            "worker-node-2"
        );
        let d = described("", "http://10.0.0.5:8081");
        assert_eq!(
            base_code(None, &d, &HostInfo::default()).as_str(),
            "10.0.0.5"
        );
        let d = described("  ***  ", "");
        assert_eq!(
            base_code(None, &d, &HostInfo::default()).as_str(),
            FALLBACK_CODE
        );
        let requested = WorkerId::parse("code", "w-7").unwrap();
        assert_eq!(base_code(Some(&requested), &d, &host), requested);
    }

    #[test]
    fn candidates_after_the_first_carry_a_suffix_and_stay_valid() {
        let long = WorkerId::parse("code", "a".repeat(MAX_WORKER_CODE_LEN)).unwrap();
        assert_eq!(candidate(&long, 0, 7), long);
        let next = candidate(&long, 1, 0xabcdef12);
        assert!(next.as_str().len() <= MAX_WORKER_CODE_LEN);
        assert!(next.as_str().ends_with("-cdef12"), "{next}");
        let w = WorkerId::parse("code", "w1").unwrap();
        assert_eq!(candidate(&w, 2, 1).as_str(), "w1-000001");
    }

    #[test]
    fn another_host_is_another_worker() {
        let a = described("", "http://10.0.0.1:8081");
        assert!(same_worker(&a, &described("x", "https://10.0.0.1/vdi")));
        assert!(!same_worker(&a, &described("", "http://10.0.0.2:8081")));
        assert!(same_worker(&described("", ""), &a));
    }
}
