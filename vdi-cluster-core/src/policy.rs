//! Admin policy of a worker and its drain state machine.
//!
//! Policy is one of the two independent axes of a worker's state (the other
//! is [`Availability`](crate::health::Availability)). Operators move it with
//! [`AdminAction`]s; the control plane moves it from observation (a draining
//! worker with nothing left on it becomes drained; a passed drain deadline
//! force-disables). Every move goes through [`transition`], one pure
//! function, and an illegal move is a [`TransitionError`].
//!
//! ```text
//!            drain                 observed empty
//!   Active ─────────▶ Draining ───────────────────▶ Drained
//!     ▲  ◀──activate── │  deadline passed              │
//!     │                ▼                                │ disable
//!     └───enable──── Disabled ◀─────────────────────────┘
//! ```
//!
//! A move to `drained`, or to `disabled` without force, is decided because
//! the worker was empty ([`Transition::requires_empty`]). Its write checks,
//! in the same atomic step as compare-and-reserve, that the worker's
//! dispatched count is still the one the decision saw
//! ([`Registry::put_worker_if_dispatched`](crate::store::Registry::put_worker_if_dispatched)):
//! a reservation racing it either lands first, and the decision is made
//! again from a fresh read, or reads the new policy and is refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// What an operator wants of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum AdminPolicy {
    /// Takes new sessions.
    #[default]
    Active,
    /// Keeps its sessions, takes no new ones.
    Draining {
        /// After this instant, remaining sessions are force-disabled.
        deadline: Option<Timestamp>,
    },
    /// Was draining and has been observed empty.
    Drained,
    /// Out of service.
    Disabled {
        /// Disabled while it still had sessions (they were dropped).
        forced: bool,
    },
}

/// `drainStatus` of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DrainStatus {
    /// Not draining.
    None,
    /// Draining, sessions remain.
    Draining,
    /// Drained: nothing left on it.
    Drained,
}

impl DrainStatus {
    /// `none`, `draining` or `drained`.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Draining => "draining",
            Self::Drained => "drained",
        }
    }
}

impl AdminPolicy {
    /// Whether new sessions may be placed on the worker (policy axis only).
    pub fn accepts_new_sessions(&self) -> bool {
        matches!(self, Self::Active)
    }

    /// `isEnabled` of the API.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, Self::Disabled { .. })
    }

    /// `isDraining` of the API.
    pub fn is_draining(&self) -> bool {
        matches!(self, Self::Draining { .. } | Self::Drained)
    }

    /// `drainStatus` of the API.
    pub fn drain_status(&self) -> DrainStatus {
        match self {
            Self::Active | Self::Disabled { .. } => DrainStatus::None,
            Self::Draining { .. } => DrainStatus::Draining,
            Self::Drained => DrainStatus::Drained,
        }
    }

    /// A short lowercase name: `active`, `draining`, `drained`, `disabled`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining { .. } => "draining",
            Self::Drained => "drained",
            Self::Disabled { .. } => "disabled",
        }
    }
}

impl fmt::Display for AdminPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An operator's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum AdminAction {
    /// Stop taking new sessions; keep existing ones.
    Drain {
        /// Optional deadline after which remaining sessions are dropped.
        deadline: Option<Timestamp>,
    },
    /// Return a draining, drained or disabled worker to service.
    Activate,
    /// Take the worker out of service. Refused while sessions remain unless
    /// `force` is set.
    Disable {
        /// Drop remaining sessions.
        force: bool,
    },
    /// Return a disabled worker to service (`isEnabled: true`).
    Enable,
}

impl AdminAction {
    /// A short name for logs and the audit trail.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Drain { .. } => "drain",
            Self::Activate => "activate",
            Self::Disable { force: false } => "disable",
            Self::Disable { force: true } => "force-disable",
            Self::Enable => "enable",
        }
    }
}

/// What moves the policy: an operator, or the control plane observing the
/// worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyEvent {
    /// An operator's action.
    Admin(AdminAction),
    /// A fresh observation of the worker (heartbeat, reconcile, a `GET`).
    Observed,
}

/// What the control plane knows of the sessions on a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Occupancy {
    /// `activeSessions` from the worker's latest heartbeat.
    pub reported_active: u32,
    /// Dispatch records and reservations on the worker.
    pub dispatched: u32,
}

impl Occupancy {
    /// Sessions still on the worker by either count.
    pub fn sessions(&self) -> u32 {
        self.reported_active.max(self.dispatched)
    }

    /// Empty by observation: the worker reports none **and** no dispatch or
    /// reservation remains.
    pub fn is_empty(&self) -> bool {
        self.reported_active == 0 && self.dispatched == 0
    }
}

/// An illegal or refused policy change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// Disabling would drop sessions and `force` was not given.
    #[error(
        "worker still has {count} session(s); drain it until drainStatus is drained, or pass force: true to drop them"
    )]
    SessionsRemain {
        /// Sessions still on the worker.
        count: u32,
    },
    /// The action makes no sense from this state.
    #[error("cannot {action} a worker that is {from}")]
    Illegal {
        /// Current policy name.
        from: &'static str,
        /// The refused action's name.
        action: &'static str,
    },
}

/// The result of a legal [`transition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Policy before.
    pub from: AdminPolicy,
    /// Policy after (equal to `from` for a no-op).
    pub to: AdminPolicy,
}

impl Transition {
    /// Whether anything changes.
    pub fn changed(&self) -> bool {
        self.from != self.to
    }

    /// Whether the new policy was chosen because the worker was empty (to
    /// `drained`, or to `disabled` without force). Its write must then
    /// check, in the backend's atomic step, that the worker still has the
    /// dispatched count this decision saw (none): otherwise a reservation
    /// racing the transition could land on a worker reported drained, or
    /// one that was disabled without force.
    pub fn requires_empty(&self) -> bool {
        self.changed()
            && matches!(
                self.to,
                AdminPolicy::Drained | AdminPolicy::Disabled { forced: false }
            )
    }
}

/// The one function that moves a worker's policy.
///
/// Repeating the state a worker is already in is a legal no-op (two
/// operators pressing "drain" both succeed).
pub fn transition(
    from: AdminPolicy,
    event: PolicyEvent,
    occupancy: Occupancy,
    now: Timestamp,
) -> Result<Transition, TransitionError> {
    use AdminPolicy as P;
    let to = match event {
        PolicyEvent::Observed => match from {
            P::Draining { deadline } => {
                if occupancy.is_empty() {
                    P::Drained
                } else if deadline.is_some_and(|d| now >= d) {
                    P::Disabled { forced: true }
                } else {
                    from
                }
            }
            P::Active | P::Drained | P::Disabled { .. } => from,
        },
        PolicyEvent::Admin(action) => {
            let illegal = || TransitionError::Illegal {
                from: from.name(),
                action: action.name(),
            };
            match (from, action) {
                (P::Active, AdminAction::Drain { deadline }) => {
                    if occupancy.is_empty() {
                        P::Drained
                    } else {
                        P::Draining { deadline }
                    }
                }
                (P::Draining { .. }, AdminAction::Drain { deadline }) => P::Draining { deadline },
                (P::Drained, AdminAction::Drain { .. }) => P::Drained,
                (P::Disabled { .. }, AdminAction::Drain { .. }) => return Err(illegal()),
                (_, AdminAction::Activate) => P::Active,
                (P::Disabled { .. }, AdminAction::Enable) => P::Active,
                (P::Active | P::Draining { .. } | P::Drained, AdminAction::Enable) => from,
                (P::Disabled { .. }, AdminAction::Disable { .. }) => from,
                (_, AdminAction::Disable { force }) => {
                    let count = occupancy.sessions();
                    if count == 0 {
                        P::Disabled { forced: false }
                    } else if force {
                        P::Disabled { forced: true }
                    } else {
                        return Err(TransitionError::SessionsRemain { count });
                    }
                }
            }
        }
    };
    Ok(Transition { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000);
    fn occ(reported: u32, dispatched: u32) -> Occupancy {
        Occupancy {
            reported_active: reported,
            dispatched,
        }
    }
    fn admin(p: AdminPolicy, a: AdminAction, o: Occupancy) -> Result<AdminPolicy, TransitionError> {
        transition(p, PolicyEvent::Admin(a), o, NOW).map(|t| t.to)
    }

    #[test]
    fn exam_platform_drain_runbook() {
        let draining = admin(
            AdminPolicy::Active,
            AdminAction::Drain { deadline: None },
            occ(3, 3),
        )
        .unwrap();
        assert_eq!(draining.drain_status(), DrainStatus::Draining);
        assert!(!draining.accepts_new_sessions());
        // Reported 0 but a dispatch remains: not drained yet.
        let still = transition(draining, PolicyEvent::Observed, occ(0, 1), NOW).unwrap();
        assert!(!still.changed());
        let drained = transition(draining, PolicyEvent::Observed, occ(0, 0), NOW)
            .unwrap()
            .to;
        assert_eq!(drained, AdminPolicy::Drained);
        let disabled = admin(drained, AdminAction::Disable { force: false }, occ(0, 0)).unwrap();
        assert_eq!(disabled, AdminPolicy::Disabled { forced: false });
        assert!(!disabled.is_enabled());
    }

    #[test]
    fn disable_with_sessions_needs_force() {
        let err = admin(
            AdminPolicy::Active,
            AdminAction::Disable { force: false },
            occ(2, 5),
        )
        .unwrap_err();
        assert_eq!(err, TransitionError::SessionsRemain { count: 5 });
        assert!(err.to_string().contains("5 session"));
        let forced = admin(
            AdminPolicy::Active,
            AdminAction::Disable { force: true },
            occ(2, 5),
        )
        .unwrap();
        assert_eq!(forced, AdminPolicy::Disabled { forced: true });
    }

    #[test]
    fn transitions_decided_on_emptiness_are_guarded() {
        let t = |p, a, o| transition(p, PolicyEvent::Admin(a), o, NOW).unwrap();
        let drain = AdminAction::Drain { deadline: None };
        assert!(t(AdminPolicy::Active, drain, occ(0, 0)).requires_empty());
        assert!(!t(AdminPolicy::Active, drain, occ(0, 1)).requires_empty());
        let disable = AdminAction::Disable { force: false };
        assert!(t(AdminPolicy::Active, disable, occ(0, 0)).requires_empty());
        assert!(t(AdminPolicy::Drained, disable, occ(0, 0)).requires_empty());
        let forced = AdminAction::Disable { force: true };
        assert!(!t(AdminPolicy::Active, forced, occ(1, 1)).requires_empty());
        // A no-op writes nothing.
        assert!(!t(AdminPolicy::Drained, drain, occ(0, 0)).requires_empty());
        let observed = transition(
            AdminPolicy::Draining { deadline: None },
            PolicyEvent::Observed,
            occ(0, 0),
            NOW,
        )
        .unwrap();
        assert!(observed.requires_empty());
        assert!(!t(AdminPolicy::Drained, AdminAction::Activate, occ(0, 0)).requires_empty());
    }

    #[test]
    fn deadline_force_disables() {
        let p = AdminPolicy::Draining {
            deadline: Some(Timestamp(500)),
        };
        let t = transition(p, PolicyEvent::Observed, occ(1, 1), NOW).unwrap();
        assert_eq!(t.to, AdminPolicy::Disabled { forced: true });
    }

    #[test]
    fn illegal_and_noops() {
        let disabled = AdminPolicy::Disabled { forced: false };
        assert!(matches!(
            admin(disabled, AdminAction::Drain { deadline: None }, occ(0, 0)),
            Err(TransitionError::Illegal { .. })
        ));
        assert_eq!(
            admin(disabled, AdminAction::Enable, occ(0, 0)).unwrap(),
            AdminPolicy::Active
        );
        assert_eq!(
            admin(AdminPolicy::Drained, AdminAction::Activate, occ(0, 0)).unwrap(),
            AdminPolicy::Active
        );
        assert_eq!(
            admin(AdminPolicy::Active, AdminAction::Enable, occ(1, 1)).unwrap(),
            AdminPolicy::Active
        );
    }
}
