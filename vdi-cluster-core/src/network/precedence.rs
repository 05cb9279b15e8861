//! Which network policy an exam desktop gets: the exam's, booked on the
//! calendar and sent with the allocation or prewarm, or the node's own
//! default (its `EXAM_*` variables).
//!
//! * **An exam's policy replaces the node's.** Restriction on or off, the
//!   allowed domains, networks and addresses, and the origin all come from
//!   the exam: the lists are not merged, so an exam office gets exactly
//!   what it booked (a node default allowing a neighbouring site does not
//!   leak into an exam that does not list it).
//! * **The node's strict flag is a floor.** An exam may ask for strict
//!   enforcement on a node that is not strict, but cannot weaken a strict
//!   node: a desktop whose rules could not be applied is then still not
//!   started. `EXAM_FIREWALL_ENFORCE_STRICT` is the node operator's word
//!   on what the node may hand out unprotected.
//! * **Without an exam policy** the node's default applies, as before.

use super::NetworkPolicy;

/// Where the policy a desktop got came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySource {
    /// The node's own default (its `EXAM_*` variables).
    Node,
    /// The exam's, booked on the calendar.
    Exam,
}

impl PolicySource {
    /// `node` or `exam`, as the node's status and log say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Exam => "exam",
        }
    }
}

/// The policy a desktop gets from the node's `default` and the `exam`'s
/// policy if it has one (see the module docs), and where it came from.
pub fn effective_policy(
    default: &NetworkPolicy,
    exam: Option<&NetworkPolicy>,
) -> (NetworkPolicy, PolicySource) {
    match exam {
        None => (default.clone(), PolicySource::Node),
        Some(exam) => (
            NetworkPolicy {
                enforce_strict: exam.enforce_strict || default.enforce_strict,
                ..exam.clone()
            },
            PolicySource::Exam,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_default() -> NetworkPolicy {
        NetworkPolicy {
            allowed_domains: vec!["neighbour.edu.vn".into()],
            ..NetworkPolicy::restricted()
        }
    }

    fn exam(strict: bool) -> NetworkPolicy {
        NetworkPolicy {
            allowed_ips: vec!["10.0.0.7".parse().unwrap()],
            enforce_strict: strict,
            ..NetworkPolicy::restricted()
        }
    }

    #[test]
    fn the_exams_policy_replaces_the_nodes_lists() {
        let (policy, source) = effective_policy(&node_default(), Some(&exam(true)));
        assert_eq!(source, PolicySource::Exam);
        assert_eq!(policy, exam(true));
        assert!(policy.allowed_domains.is_empty(), "lists are not merged");
        let (policy, source) = effective_policy(&node_default(), None);
        assert_eq!((policy, source), (node_default(), PolicySource::Node));
    }

    #[test]
    fn a_strict_node_stays_strict_and_an_exam_can_raise_it() {
        let (policy, _) = effective_policy(&node_default(), Some(&exam(false)));
        assert!(policy.enforce_strict, "the node's strict flag is a floor");
        let lax = NetworkPolicy {
            enforce_strict: false,
            ..node_default()
        };
        assert!(!effective_policy(&lax, Some(&exam(false))).0.enforce_strict);
        assert!(effective_policy(&lax, Some(&exam(true))).0.enforce_strict);
        let open = NetworkPolicy::default();
        let (policy, source) = effective_policy(&node_default(), Some(&open));
        assert!(
            !policy.restrict_internet,
            "an exam may book an open desktop"
        );
        assert_eq!(source.as_str(), "exam");
    }
}
