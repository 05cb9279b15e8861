//! Two live processes never share one worker record. A second agent that
//! reports a live worker's code — from another port, path or host name,
//! under another boot id — is another process, not a restart of the first:
//! its heartbeat or registration is refused ([`check_takeover`]) instead of
//! taking the record over (and, with it, the first one's sessions). A
//! restart keeps its URL and host name; one that changes them waits until
//! the old record is no longer live. A heartbeat without a boot id (the
//! exam platform's own agents send none) cannot say which process it is,
//! and is judged as before. The worker's own credential says
//! which worker a process is, so it (and an operator) may always.

use super::{HostInfo, Registrant, WorkerDescription, WorkerRecord};
use crate::ids::WorkerId;

/// Another live process holds the worker's record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "worker {worker} is live at {live_at}; another process reporting this code from {other_at} is refused: give it a code of its own, or stop the first (or use the worker's own credential)"
)]
pub struct TakeoverRefused {
    /// The worker.
    pub worker: WorkerId,
    /// Where the live process is (its URL, and host name when known).
    pub live_at: String,
    /// Where the refused one said it is.
    pub other_at: String,
}

/// Where a process described by `description` on `host` is, for messages.
fn place(description: &WorkerDescription, host: &HostInfo) -> String {
    match &host.hostname {
        Some(name) => format!("{} (host {name})", description.api_base_url),
        None => description.api_base_url.clone(),
    }
}

/// Whether a process describing itself as `incoming` on `host`, under boot
/// `boot` (none: a registration, which carries none), is another process
/// than the one `stored` was written by, while that one is `live`: a boot
/// id other than the stored one (not retired; both known), or a
/// registration, and another URL or host name.
pub fn another_live_process(
    stored: &WorkerRecord,
    live: bool,
    boot: Option<&str>,
    incoming: &WorkerDescription,
    host: &HostInfo,
) -> bool {
    if !live || stored.deregistered_at.is_some() {
        return false;
    }
    let stored_boot = stored.stamp.as_ref().and_then(|s| s.boot_id.as_deref());
    if let Some(boot) = boot {
        // Boot ids say which process is which, when both are known.
        let retired = stored.retired_boots.iter().any(|r| r == boot);
        if stored_boot.is_none_or(|b| b == boot) || retired {
            return false;
        }
    }
    let other_url = !incoming.api_base_url.is_empty()
        && incoming.api_base_url != stored.description.api_base_url;
    let other_host = matches!(
        (&host.hostname, &stored.host.hostname),
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b)
    );
    other_url || other_host
}

/// Refuses what [`another_live_process`] finds, unless `who` proves which
/// worker it is (its own credential) or is an operator.
pub fn check_takeover(
    stored: &WorkerRecord,
    live: bool,
    boot: Option<&str>,
    incoming: &WorkerDescription,
    host: &HostInfo,
    who: Registrant,
) -> Result<(), TakeoverRefused> {
    let proven = matches!(who, Registrant::OwnCredential | Registrant::Operator);
    if proven || !another_live_process(stored, live, boot, incoming, host) {
        return Ok(());
    }
    Err(TakeoverRefused {
        worker: stored.id.clone(),
        live_at: place(&stored.description, &stored.host),
        other_at: place(incoming, host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HeartbeatStamp;
    use crate::time::Timestamp;

    fn described(url: &str) -> WorkerDescription {
        WorkerDescription {
            api_base_url: url.into(),
            ..Default::default()
        }
    }

    fn host(name: &str) -> HostInfo {
        HostInfo {
            hostname: Some(name.into()),
            ..Default::default()
        }
    }

    fn stored() -> WorkerRecord {
        let id = WorkerId::parse("code", "w-1").unwrap();
        let mut r = WorkerRecord::registered(id, described("http://10.0.0.5:3001"), Timestamp(0));
        r.stamp = Some(HeartbeatStamp {
            boot_id: Some("boot-a".into()),
            seq: Some(7),
        });
        r.retired_boots = vec!["boot-old".into()];
        r.host = host("exam-node-1");
        r
    }

    #[test]
    fn a_second_live_process_is_refused_a_restart_is_not() {
        let r = stored();
        let shared = Registrant::SharedToken;
        let same = described("http://10.0.0.5:3001");
        let other_port = described("http://10.0.0.5:3002");
        let node = host("exam-node-1");
        // Another port, or another host name, under a new boot (or in a
        // registration, which carries none): refused.
        let e = check_takeover(&r, true, Some("boot-b"), &other_port, &node, shared).unwrap_err();
        assert!(e.to_string().contains("10.0.0.5:3002"), "{e}");
        assert!(check_takeover(&r, true, Some("boot-b"), &same, &host("node-2"), shared).is_err());
        assert!(check_takeover(&r, true, None, &other_port, &node, Registrant::Anonymous).is_err());
        // A restart where it ran; its own boot; an old boot (stale, not a
        // takeover); a record no longer live; a proven caller.
        assert!(check_takeover(&r, true, Some("boot-b"), &same, &node, shared).is_ok());
        assert!(check_takeover(&r, true, Some("boot-a"), &other_port, &node, shared).is_ok());
        assert!(check_takeover(&r, true, Some("boot-old"), &other_port, &node, shared).is_ok());
        assert!(check_takeover(&r, false, Some("boot-b"), &other_port, &node, shared).is_ok());
        let mut legacy = r.clone();
        legacy.stamp = None;
        assert!(check_takeover(&legacy, true, Some("boot-b"), &other_port, &node, shared).is_ok());
        for proven in [Registrant::OwnCredential, Registrant::Operator] {
            assert!(check_takeover(&r, true, Some("boot-b"), &other_port, &node, proven).is_ok());
        }
        // An empty URL keeps the stored one; an unknown host name says nothing.
        let keep = described("");
        assert!(
            check_takeover(
                &r,
                true,
                Some("boot-b"),
                &keep,
                &HostInfo::default(),
                shared
            )
            .is_ok()
        );
    }
}
