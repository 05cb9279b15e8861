//! What a reconcile pass decides, as values: the [`Verdict`] on each
//! dispatch ([`judge`]), what the failure policy does with a session of a
//! failed worker ([`on_failed_worker`]), the mass-failure guard, the
//! report of a step and the counters a recount checks (`report`); in
//! [`pass`], how far a pass that runs over several steps got (its
//! checkpoint) and which workers a step checks before its scan.
//!
//! Pure: no clock, no store; time arrives as `now`. The pass that reads the
//! records, asks these functions and applies their answers is
//! orchestration (`Operations::reconcile`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dispatch::{Dispatch, DispatchState, lost_to_report, reported_gone};
use crate::health::Availability;
use crate::policy::AdminPolicy;
use crate::time::Timestamp;
use crate::validation::ValidationError;
use crate::worker::WorkerView;

pub mod pass;
mod report;

pub use pass::{
    CompletedPass, PassCheckpoint, PassProgress, PassUnderWay, StepStart, checked_first,
};
pub use report::{Counter, Drift, ExamMigration, PolicyChange, ReconcileReport};

/// What happens to sessions on a worker that failed (offline past the hard
/// timeout, deregistered, force-disabled or removed) — SkyPanelV2's
/// policies; a restarted worker's lost sessions are [`Verdict::Lost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailurePolicy {
    /// Re-dispatch each session to a healthy worker.
    #[default]
    Automatic,
    /// Mark them orphaned and alert until an operator evacuates them.
    Manual,
    /// Leave them.
    None,
}

impl FailurePolicy {
    /// `automatic`, `manual` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Manual => "manual",
            Self::None => "none",
        }
    }

    /// Parses `automatic`, `manual` or `none`.
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        match text.to_ascii_lowercase().as_str() {
            "automatic" => Ok(Self::Automatic),
            "manual" => Ok(Self::Manual),
            "none" => Ok(Self::None),
            _ => Err(ValidationError::new(
                field,
                "must be automatic, manual or none",
            )),
        }
    }
}

/// The ages that decide a dispatch's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileLimits {
    /// Reservations older are reclaimed (`VDI_ALLOCATE_TIMEOUT_SEC`).
    pub allocate_timeout: Duration,
    /// Active dispatches older, with no live session reported, are removed
    /// (`WORKER_DISPATCH_STALE_SEC`).
    pub dispatch_stale: Duration,
    /// A session missing from a worker's live list counts as gone only if
    /// it was activated at least this long before that heartbeat.
    pub live_session_grace: Duration,
}

/// Why a dispatch's worker counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Silent past the hard timeout (unknown state: the guard may hold).
    Offline,
    /// Deregistered, force-disabled or removed: positive evidence.
    Evidence,
}

/// What reconcile does with one dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Keep,
    /// A reservation older than the allocate timeout: its allocator died;
    /// undo it.
    Reclaim,
    /// The worker reported the session gone: release it.
    Gone,
    /// Active past the stale age and not in the worker's live list:
    /// release it.
    Stale,
    /// Its restarted worker's report omits it ([`lost_to_report`]): the
    /// session is gone (its worker answered, it did not fail); release it.
    Lost,
    /// Its worker failed: the failure policy decides
    /// ([`on_failed_worker`]).
    WorkerFailed(Failure),
}

/// Judges dispatch `d` on `worker` (`None`: the worker is not registered)
/// at `now`.
pub fn judge(
    d: &Dispatch,
    worker: Option<&WorkerView>,
    now: Timestamp,
    limits: &ReconcileLimits,
) -> Verdict {
    if d.state == DispatchState::Reserved {
        return if now.since(d.reserved_at) > limits.allocate_timeout {
            Verdict::Reclaim
        } else {
            Verdict::Keep
        };
    }
    let Some(worker) = worker else {
        return Verdict::WorkerFailed(Failure::Evidence);
    };
    if lost_to_report(d, &worker.record) {
        return Verdict::Lost;
    }
    if let Some(failure) = failure_of(worker) {
        return Verdict::WorkerFailed(failure);
    }
    if reported_gone(d, &worker.record, limits.live_session_grace) {
        return Verdict::Gone;
    }
    let live_listed = worker
        .record
        .live_sessions
        .as_ref()
        .is_some_and(|l| l.contains(&d.key));
    let since = d.activated_at.unwrap_or(d.reserved_at);
    if d.state == DispatchState::Active && now.since(since) > limits.dispatch_stale && !live_listed
    {
        Verdict::Stale
    } else {
        Verdict::Keep
    }
}

/// Whether `view`'s worker has failed, and how we know: only silence is
/// [`Failure::Offline`]; deregistered or force-disabled is evidence.
pub fn failure_of(view: &WorkerView) -> Option<Failure> {
    if view.record.deregistered_at.is_some()
        || view.record.policy == (AdminPolicy::Disabled { forced: true })
    {
        Some(Failure::Evidence)
    } else if view.availability == Availability::Offline {
        Some(Failure::Offline)
    } else {
        None
    }
}

/// What the pass knows when a session of a failed worker comes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureContext {
    /// The configured policy.
    pub policy: FailurePolicy,
    /// Whether the mass-failure guard holds ([`MassFailure::guards`]).
    pub mass_failure_guard: bool,
    /// Whether any worker could take a re-dispatched session.
    pub healthy_target: bool,
    /// Whether this pass may still migrate a session.
    pub budget_left: bool,
}

/// What happens to one session of a failed worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// A reservation: its allocator is still at work. Not counted.
    Ignore,
    /// It stays where it is.
    LeaveInPlace(LeaveReason),
    /// Marked orphaned until an operator evacuates it (`manual`).
    Orphan,
    /// Re-dispatched to a healthy worker (`automatic`).
    Migrate,
}

/// Why a session of a failed worker stays where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// The failure policy is `none`.
    PolicyNone,
    /// `manual`, and it is already orphaned.
    AlreadyOrphaned,
    /// Its worker is only silent, and so are too many others at once.
    MassFailureGuard,
    /// No healthy worker could take it.
    NoHealthyTarget,
    /// This pass has migrated as many sessions as it may.
    BudgetSpent,
}

/// Applies the failure policy to a session in `state` whose worker failed
/// by `failure`.
pub fn on_failed_worker(
    state: DispatchState,
    failure: Failure,
    ctx: &FailureContext,
) -> FailureAction {
    if state == DispatchState::Reserved {
        return FailureAction::Ignore;
    }
    let leave = FailureAction::LeaveInPlace;
    match ctx.policy {
        FailurePolicy::None => leave(LeaveReason::PolicyNone),
        FailurePolicy::Manual if state == DispatchState::Orphaned => {
            leave(LeaveReason::AlreadyOrphaned)
        }
        _ if ctx.mass_failure_guard && failure == Failure::Offline => {
            leave(LeaveReason::MassFailureGuard)
        }
        FailurePolicy::Manual => FailureAction::Orphan,
        FailurePolicy::Automatic if !ctx.healthy_target => leave(LeaveReason::NoHealthyTarget),
        FailurePolicy::Automatic if !ctx.budget_left => leave(LeaveReason::BudgetSpent),
        FailurePolicy::Automatic => FailureAction::Migrate,
    }
}

/// How many enabled workers are silent (unreachable or offline) at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassFailure {
    /// Enabled, registered workers.
    pub enabled: usize,
    /// Of those, silent ones.
    pub silent: usize,
}

impl MassFailure {
    /// Counts the enabled and the silent among `views`.
    pub fn of(views: &[WorkerView]) -> Self {
        let enabled = views
            .iter()
            .filter(|v| v.record.policy.is_enabled() && v.record.deregistered_at.is_none());
        let (mut count, mut silent) = (0, 0);
        for v in enabled {
            count += 1;
            if matches!(
                v.availability,
                Availability::Unreachable | Availability::Offline
            ) {
                silent += 1;
            }
        }
        Self {
            enabled: count,
            silent,
        }
    }

    /// Whether at least `percent` of the enabled workers are silent (and
    /// at least one is): then a control-plane or network fault is likelier
    /// than that many workers dying, and no session is moved for silence.
    pub fn guards(&self, percent: u32) -> bool {
        self.silent > 0 && self.silent * 100 >= self.enabled * percent as usize
    }
}

/// The mass-failure guard with a hold-down: once engaged it stays on for
/// `hold` after the silent share falls below the threshold. Workers come
/// back from a fault one by one; without the hold, the last of them would
/// be judged failed (and their sessions moved) the moment the others
/// returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardHold {
    until: Option<Timestamp>,
}

impl GuardHold {
    /// Whether the guard is on at `now`, given whether the silent share
    /// engages it now (`engaged`).
    pub fn observe(&mut self, engaged: bool, now: Timestamp, hold: Duration) -> bool {
        if engaged {
            self.until = Some(now.plus(hold));
            return true;
        }
        self.until.is_some_and(|until| now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{HealthConfig, HeartbeatStamp};
    use crate::ids::SessionKey;
    use crate::ids::WorkerId;
    use crate::worker::{WorkerDescription, WorkerRecord, WorkerSnapshot};

    const LIMITS: ReconcileLimits = ReconcileLimits {
        allocate_timeout: Duration::from_secs(90),
        dispatch_stale: Duration::from_secs(21_600),
        live_session_grace: Duration::from_secs(60),
    };

    fn secs(s: u64) -> Timestamp {
        Timestamp(s * 1_000)
    }

    /// A worker last heard at `heard` (boot `b1`), seen at `now`.
    fn view(heard: u64, now: u64, policy: AdminPolicy) -> WorkerView {
        let id = WorkerId::parse("code", "w1").unwrap();
        let mut r = WorkerRecord::registered(id, WorkerDescription::default(), secs(0));
        r.stamp = Some(HeartbeatStamp {
            boot_id: Some("b1".into()),
            seq: Some(1),
        });
        r.boot_seen_at = Some(secs(0));
        r.last_heartbeat_at = Some(secs(heard));
        r.policy = policy;
        let snapshot = WorkerSnapshot {
            record: r,
            version: 1,
            dispatched: 1,
        };
        WorkerView::new(snapshot, secs(now), &HealthConfig::default())
    }

    fn dispatch(state: DispatchState, at: u64) -> Dispatch {
        let mut d = Dispatch::reserve(
            SessionKey::parse("e", "u").unwrap(),
            WorkerId::parse("code", "w1").unwrap(),
            secs(at),
            Some("b1".into()),
            Some(1),
        );
        d.state = state;
        if state != DispatchState::Reserved {
            d.activated_at = Some(secs(at));
        }
        d
    }

    #[test]
    fn the_guard_holds_while_workers_return_one_by_one() {
        let hold = Duration::from_secs(10);
        let mut g = GuardHold::default();
        assert!(!g.observe(false, secs(100), hold), "never engaged");
        assert!(g.observe(true, secs(100), hold));
        assert!(g.observe(true, secs(105), hold));
        // The share falls below the threshold: held until 105 + 10.
        assert!(g.observe(false, secs(110), hold));
        assert!(g.observe(false, secs(114), hold));
        assert!(!g.observe(false, secs(115), hold));
        assert!(!g.observe(false, secs(200), hold));
    }

    #[test]
    fn reservations_are_reclaimed_only_after_the_allocate_timeout() {
        let d = dispatch(DispatchState::Reserved, 100);
        assert_eq!(judge(&d, None, secs(150), &LIMITS), Verdict::Keep);
        assert_eq!(judge(&d, None, secs(191), &LIMITS), Verdict::Reclaim);
    }

    #[test]
    fn a_missing_offline_or_force_disabled_worker_has_failed() {
        let d = dispatch(DispatchState::Active, 100);
        let failed = |w: Option<&WorkerView>| judge(&d, w, secs(1_000), &LIMITS);
        assert_eq!(failed(None), Verdict::WorkerFailed(Failure::Evidence));
        let offline = view(100, 1_000, AdminPolicy::Active);
        assert_eq!(
            failed(Some(&offline)),
            Verdict::WorkerFailed(Failure::Offline)
        );
        let forced = view(990, 1_000, AdminPolicy::Disabled { forced: true });
        assert_eq!(
            failed(Some(&forced)),
            Verdict::WorkerFailed(Failure::Evidence)
        );
        let healthy = view(990, 1_000, AdminPolicy::Active);
        assert_eq!(failed(Some(&healthy)), Verdict::Keep);
    }

    #[test]
    fn a_report_proves_lost_before_failure_and_goodbye_is_evidence() {
        let (d, now) = (dispatch(DispatchState::Active, 100), secs(1_000));
        let verdict = |heard, policy, live: Vec<SessionKey>| {
            let mut w = view(heard, 1_000, policy);
            w.record.stamp.as_mut().unwrap().boot_id = Some("b2".into());
            w.record.boot_seen_at = Some(secs(200));
            w.record.live_sessions = Some(live);
            judge(&d, Some(&w), now, &LIMITS)
        };
        assert_eq!(verdict(990, AdminPolicy::Active, vec![]), Verdict::Lost);
        assert_eq!(verdict(200, AdminPolicy::Active, vec![]), Verdict::Lost);
        let forced = AdminPolicy::Disabled { forced: true };
        assert_eq!(verdict(990, forced, vec![]), Verdict::Lost);
        let listed = vec![d.key.clone()];
        assert_eq!(verdict(990, AdminPolicy::Active, listed), Verdict::Keep);
        let mut bye = view(990, 1_000, AdminPolicy::Active);
        (bye.record.deregistered_at, bye.availability) = (Some(secs(995)), Availability::Offline);
        let failed = Verdict::WorkerFailed(Failure::Evidence);
        assert_eq!(judge(&d, Some(&bye), now, &LIMITS), failed);
    }

    #[test]
    fn old_active_dispatches_are_stale_unless_listed_live() {
        let d = dispatch(DispatchState::Active, 0);
        let now = 21_601;
        let mut w = view(now - 5, now, AdminPolicy::Active);
        assert_eq!(judge(&d, Some(&w), secs(now), &LIMITS), Verdict::Stale);
        w.record.live_sessions = Some(vec![d.key.clone()]);
        assert_eq!(judge(&d, Some(&w), secs(now), &LIMITS), Verdict::Keep);
    }

    #[test]
    fn the_failure_policy_in_order() {
        use DispatchState::{Active, Orphaned, Reserved};
        use Failure::{Evidence, Offline};
        let ctx = |policy| FailureContext {
            policy,
            mass_failure_guard: false,
            healthy_target: true,
            budget_left: true,
        };
        let auto = ctx(FailurePolicy::Automatic);
        assert_eq!(
            on_failed_worker(Reserved, Evidence, &auto),
            FailureAction::Ignore
        );
        assert_eq!(
            on_failed_worker(Active, Offline, &auto),
            FailureAction::Migrate
        );
        assert_eq!(
            on_failed_worker(Active, Offline, &ctx(FailurePolicy::None)),
            FailureAction::LeaveInPlace(LeaveReason::PolicyNone)
        );
        let manual = ctx(FailurePolicy::Manual);
        assert_eq!(
            on_failed_worker(Active, Evidence, &manual),
            FailureAction::Orphan
        );
        assert_eq!(
            on_failed_worker(Orphaned, Evidence, &manual),
            FailureAction::LeaveInPlace(LeaveReason::AlreadyOrphaned)
        );
        let guarded = FailureContext {
            mass_failure_guard: true,
            ..auto
        };
        assert_eq!(
            on_failed_worker(Active, Offline, &guarded),
            FailureAction::LeaveInPlace(LeaveReason::MassFailureGuard)
        );
        assert_eq!(
            on_failed_worker(Active, Evidence, &guarded),
            FailureAction::Migrate
        );
        let stranded = FailureContext {
            healthy_target: false,
            ..auto
        };
        assert_eq!(
            on_failed_worker(Active, Evidence, &stranded),
            FailureAction::LeaveInPlace(LeaveReason::NoHealthyTarget)
        );
        let spent = FailureContext {
            budget_left: false,
            ..auto
        };
        assert_eq!(
            on_failed_worker(Active, Evidence, &spent),
            FailureAction::LeaveInPlace(LeaveReason::BudgetSpent)
        );
    }

    #[test]
    fn the_mass_failure_guard_needs_a_silent_share() {
        let healthy = view(990, 1_000, AdminPolicy::Active);
        let silent = view(500, 1_000, AdminPolicy::Active);
        let fleet = [healthy.clone(), silent.clone()];
        let share = MassFailure::of(&fleet);
        assert_eq!((share.enabled, share.silent), (2, 1));
        assert!(share.guards(50));
        assert!(!share.guards(51));
        assert!(!MassFailure::of(&[healthy]).guards(0));
        assert!(!MassFailure::of(&[]).guards(50));
    }
}
