//! The decisions of capacity on schedule: which requests to store, and the
//! next step of each.

use std::time::Duration;

use super::{CapacityRequest, CapacityState};
use crate::exam::{Capacity, Exam, Pool, risk};
use crate::health::Availability;
use crate::ids::ExamId;
use crate::policy::AdminPolicy;
use crate::scheduler::Constraints;
use crate::time::Timestamp;
use crate::worker::{WorkerDescription, WorkerView};

/// The slots of `constraints`' workers as a pool: what a request promises.
fn promise(constraints: &Constraints, slots: u32) -> Pool {
    Pool {
        signature: WorkerDescription {
            zone: constraints.zone.clone(),
            labels: constraints.labels.clone(),
            capabilities: constraints.capabilities.clone(),
            ..WorkerDescription::default()
        },
        slots,
    }
}

/// The pools requests promise and have not delivered yet (pending or
/// requested): counted when deciding new requests, so a shortfall is
/// asked for once.
pub fn promised(requests: &[CapacityRequest]) -> Vec<Pool> {
    requests
        .iter()
        .filter(|r| matches!(r.state, CapacityState::Pending | CapacityState::Requested))
        .map(|r| promise(&r.constraints, r.slots))
        .collect()
}

/// The requests to store at `now`: for each booked exam whose window
/// begins within `scale_lead` (or has begun and not ended), not covered
/// by a live request, that is short on `capacity` plus what the live
/// requests (and those planned before it) promise, one request for its
/// shortfall at the peak, naming the exams overlapping it. Exams are
/// taken by window start, then id, so every replica plans the same.
pub fn plan_requests(
    exams: &[Exam],
    capacity: &Capacity,
    requests: &[CapacityRequest],
    now: Timestamp,
    scale_lead: Duration,
) -> Vec<CapacityRequest> {
    let mut order: Vec<&Exam> = exams
        .iter()
        .filter(|e| {
            let w = e.window();
            w.start.minus(scale_lead) <= now && now < w.end
        })
        .collect();
    order.sort_by(|a, b| (a.window().start, &a.id).cmp(&(b.window().start, &b.id)));
    let mut planned: Vec<CapacityRequest> = Vec::new();
    for exam in order {
        let id = CapacityRequest::id_for(&exam.id, exam.starts_at);
        let covered =
            |r: &CapacityRequest| r.id == id || (r.state.is_live() && r.exams.contains(&exam.id));
        if requests.iter().chain(&planned).any(covered) {
            continue;
        }
        let mut pools = capacity.pools().to_vec();
        pools.extend(promised(requests));
        pools.extend(promised(&planned));
        let Some(short) = risk(exam, exams, &Capacity::new(pools), now) else {
            continue;
        };
        let needed_until = short
            .overlapping
            .iter()
            .filter_map(|l| exams.iter().find(|e| e.id == l.id))
            .map(|e| e.window().end)
            .max()
            .unwrap_or(exam.window().end);
        planned.push(CapacityRequest {
            id,
            exams: short.overlapping.iter().map(|l| l.id.clone()).collect(),
            constraints: exam.constraints.clone(),
            slots: short.missing,
            deadline: exam.window().start,
            needed_until,
            state: CapacityState::Pending,
            workers: Vec::new(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            updated_at: now,
        });
    }
    planned
}

/// The booked exams (not over at `now`) that would miss more students on
/// `without` than on `with`: those that still need the workers `without`
/// leaves out.
pub fn needed_by(
    exams: &[Exam],
    with: &Capacity,
    without: &Capacity,
    now: Timestamp,
) -> Vec<ExamId> {
    let missing = |e: &Exam, c: &Capacity| risk(e, exams, c, now).map_or(0, |s| s.missing);
    exams
        .iter()
        .filter(|e| e.window().end > now && missing(e, without) > missing(e, with))
        .map(|e| e.id.clone())
        .collect()
}

/// How long to wait before the `attempts`-th call of the hook for one
/// step is repeated: `base` doubled per attempt, at most 64 times `base`.
pub fn retry_after(attempts: u32, base: Duration) -> Duration {
    base.saturating_mul(1 << attempts.saturating_sub(1).min(6))
}

/// The fleet as a request's workers are judged.
#[derive(Debug, Clone, Copy)]
pub struct Fleet<'a> {
    /// Every worker, at `now`.
    pub views: &'a [WorkerView],
}

impl Fleet<'_> {
    fn view(&self, code: &crate::ids::WorkerId) -> Option<&WorkerView> {
        self.views.iter().find(|v| v.id() == code)
    }

    /// Whether the worker has reported and takes sessions.
    fn joined(&self, code: &crate::ids::WorkerId) -> bool {
        self.view(code).is_some_and(|v| {
            v.record.accepting()
                && matches!(
                    v.availability,
                    Availability::Healthy | Availability::Unhealthy
                )
        })
    }

    /// Whether the worker runs nothing for the control plane any more:
    /// drained, disabled, or gone.
    fn emptied(&self, code: &crate::ids::WorkerId) -> bool {
        self.view(code).is_none_or(|v| {
            v.record.deregistered_at.is_some()
                || matches!(
                    v.record.policy,
                    AdminPolicy::Drained | AdminPolicy::Disabled { .. }
                )
        })
    }
}

/// What to do next with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet.
    Wait,
    /// Call the hook's `scale_up` (claimed first by compare-and-set).
    Issue,
    /// Every worker named joined.
    Joined,
    /// The deadline passed before they did.
    Missing,
    /// No booked exam needs the workers: drain them.
    Release,
    /// Every worker drained: call the hook's `scale_down` (claimed first),
    /// then remove them.
    Stop,
}

/// The next step of `request` at `now`; `still_needed` says whether a
/// booked exam still needs its workers (asked only once the request's
/// exams are over).
pub fn next_step(
    request: &CapacityRequest,
    fleet: Fleet<'_>,
    still_needed: impl Fn() -> bool,
    now: Timestamp,
) -> Step {
    use CapacityState::*;
    let all_joined = !request.workers.is_empty() && request.workers.iter().all(|w| fleet.joined(w));
    let due = request.next_attempt_at <= now;
    match request.state {
        Released => Step::Wait,
        Releasing if due && request.workers.iter().all(|w| fleet.emptied(w)) => Step::Stop,
        Releasing => Step::Wait,
        Pending | Requested | Joined | Missing
            if now >= request.needed_until && !still_needed() =>
        {
            Step::Release
        }
        Pending if now >= request.deadline => Step::Missing,
        Pending if due => Step::Issue,
        Pending => Step::Wait,
        Requested | Missing if all_joined => Step::Joined,
        Requested if now >= request.deadline => Step::Missing,
        Requested | Joined | Missing => Step::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::tests::{MIN, cap, exam};

    #[test]
    fn a_shortfall_is_asked_once_for_the_exams_overlapping_its_peak() {
        // a: window 85..165, 8 students; b: 150..225 (lead 15), 6.
        let a = exam("a", 100, 160, 8);
        let b = exam("b", 165, 220, 6);
        let exams = [a.clone(), b.clone()];
        let lead = Duration::from_secs(30 * 60);
        // Too early for either.
        assert!(plan_requests(&exams, &cap(10), &[], Timestamp(50 * MIN), lead).is_empty());
        let now = Timestamp(60 * MIN);
        let planned = plan_requests(&exams, &cap(6), &[], now, lead);
        assert_eq!(planned.len(), 1);
        let r = &planned[0];
        assert_eq!(r.id, CapacityRequest::id_for(&a.id, a.starts_at));
        // The peak is where b's window opens inside a's: both, 14 on 6.
        assert_eq!(r.slots, 8);
        assert_eq!(r.deadline, a.window().start);
        assert_eq!(r.needed_until, b.window().end);
        assert_eq!(r.exams, vec![a.id.clone(), b.id.clone()]);
        // Once stored, b is covered by it: nothing more is planned.
        assert!(plan_requests(&exams, &cap(6), &planned, now, lead).is_empty());
        let later = Timestamp(140 * MIN);
        assert!(plan_requests(&exams, &cap(6), &planned, later, lead).is_empty());
        // A request already released is not asked again.
        let released = [planned[0].moved_to(CapacityState::Released, later)];
        assert!(plan_requests(&exams[..1], &cap(6), &released, now, lead).is_empty());
    }

    #[test]
    fn steps_follow_the_fleet_and_the_calendar() {
        let a = exam("a", 100, 160, 8);
        let mut r = plan_requests(
            std::slice::from_ref(&a),
            &cap(6),
            &[],
            Timestamp(60 * MIN),
            Duration::from_secs(30 * 60),
        )
        .remove(0);
        let fleet = Fleet { views: &[] };
        let now = Timestamp(60 * MIN);
        assert_eq!(next_step(&r, fleet, || true, now), Step::Issue);
        r.next_attempt_at = now.plus(Duration::from_secs(10));
        assert_eq!(next_step(&r, fleet, || true, now), Step::Wait);
        r = r.moved_to(CapacityState::Requested, now);
        r.workers = vec![crate::ids::WorkerId::parse("code", "cap-1").unwrap()];
        assert_eq!(next_step(&r, fleet, || true, now), Step::Wait);
        assert_eq!(next_step(&r, fleet, || true, r.deadline), Step::Missing);
        let r = r.moved_to(CapacityState::Missing, r.deadline);
        // After the exams, needed by none: release; drained (gone): stop.
        assert_eq!(next_step(&r, fleet, || true, r.needed_until), Step::Wait);
        assert_eq!(
            next_step(&r, fleet, || false, r.needed_until),
            Step::Release
        );
        let r = r.moved_to(CapacityState::Releasing, r.needed_until);
        assert_eq!(next_step(&r, fleet, || false, r.needed_until), Step::Stop);
    }

    #[test]
    fn retries_back_off_and_stay_bounded() {
        let base = Duration::from_secs(5);
        assert_eq!(retry_after(1, base), base);
        assert_eq!(retry_after(3, base), base * 4);
        assert_eq!(retry_after(90, base), base * 64);
    }

    #[test]
    fn workers_are_needed_while_a_booked_exam_would_miss_more_without_them() {
        let a = exam("a", 100, 160, 8);
        let exams = [a.clone()];
        let now = Timestamp(120 * MIN);
        assert_eq!(
            needed_by(&exams, &cap(10), &cap(6), now),
            vec![a.id.clone()]
        );
        assert!(needed_by(&exams, &cap(10), &cap(8), now).is_empty());
        assert!(needed_by(&exams, &cap(10), &cap(0), a.window().end).is_empty());
    }
}
