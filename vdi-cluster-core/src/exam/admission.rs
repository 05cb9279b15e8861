//! Admission control (invariant D), pure.
//!
//! # Model
//!
//! *Capacity* is the schedulable fleet grouped into [`Pool`]s: workers with
//! the same zone, labels and capabilities, their slots summed and reduced
//! by the headroom percentage. A worker counts when its policy takes new
//! sessions (not draining, drained, disabled or deregistered) and it is not
//! offline; an unreachable or unhealthy worker still counts, as a
//! heartbeat's lapse is not a loss of capacity days ahead.
//!
//! *Demand* at an instant is the set of booked exams whose [window]
//! contains it. It fits when every exam's students can be assigned to pools
//! its constraints match without exceeding any pool: a bipartite flow from
//! exams to pools. The shortfall is demand minus the maximum flow (exactly
//! Hall's deficiency), so constraints are handled exactly, not by a
//! conservative rule: two exams pinned to different zones never compete,
//! an unconstrained exam uses whatever the constrained ones leave.
//!
//! An exam's demand at an instant is [`Exam::demand_at`]: all its students
//! in its main window, then only its extended students, each until their
//! own end ([`super::extra_time`]). An exam's demand never rises after its
//! window opens, and demands that are each no larger than those of a set
//! that fits also fit; so checking a candidate's window at its own start
//! and at every other window's start inside it checks every instant.
//! Instants before `from` (now) are not checked: the past needs no
//! capacity.
//!
//! [`earliest_fit`] searches forward: the first start that fits is the
//! requested one or one where the candidate's window opens exactly when
//! another's demand falls (moving a window earlier only trades its last
//! instants for instants whose demands are no larger, unless that crosses
//! a fall), so only those starts are tried, up to a horizon.
//!
//! [window]: super::Exam::window

use std::collections::BTreeSet;
use std::time::Duration;

use crate::ids::ExamId;
use crate::scheduler::Constraints;
use crate::time::Timestamp;
use crate::worker::{WorkerDescription, WorkerView};
use crate::{Availability, Exam};

/// Workers of one signature (zone, labels, capabilities) and their slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The signature (name and URL are empty).
    pub signature: WorkerDescription,
    /// Slots, headroom already taken off.
    pub slots: u32,
}

/// Slots the scale hook may add in one zone, for workers of any labels and
/// capabilities (`--admission-counts-scalable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalable {
    /// The zone; `None` when neither the fleet nor the calendar names one.
    pub zone: Option<String>,
    /// Slots.
    pub slots: u32,
}

impl Scalable {
    /// Whether workers started in this zone satisfy `constraints`: an exam
    /// pinned to a zone takes that zone's, an unpinned one any zone's.
    fn serves(&self, constraints: &Constraints) -> bool {
        constraints.zone.is_none() || constraints.zone == self.zone
    }
}

/// The schedulable capacity, by pool, and what the scale hook may add.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capacity {
    pools: Vec<Pool>,
    scalable: Vec<Scalable>,
}

impl Capacity {
    /// Capacity of `pools` as given (equal signatures are merged).
    pub fn new(pools: impl IntoIterator<Item = Pool>) -> Self {
        let mut merged: Vec<Pool> = Vec::new();
        for p in pools {
            match merged.iter_mut().find(|m| m.signature == p.signature) {
                Some(m) => m.slots = m.slots.saturating_add(p.slots),
                None => merged.push(p),
            }
        }
        Self {
            pools: merged,
            scalable: Vec::new(),
        }
    }

    /// This capacity plus `slots` per zone that the scale hook may add:
    /// one [`Scalable`] per zone of the pools and of `constraints`, or one
    /// without a zone when none names one. Nothing when `slots` is 0.
    pub fn with_scalable<'a>(
        mut self,
        constraints: impl IntoIterator<Item = &'a Constraints>,
        slots: u32,
    ) -> Self {
        if slots == 0 {
            return self;
        }
        let mut zones: BTreeSet<Option<String>> = self
            .pools
            .iter()
            .filter_map(|p| p.signature.zone.clone())
            .chain(constraints.into_iter().filter_map(|c| c.zone.clone()))
            .map(Some)
            .collect();
        if zones.is_empty() {
            zones.insert(None);
        }
        self.scalable = zones
            .into_iter()
            .map(|zone| Scalable { zone, slots })
            .collect();
        self
    }

    /// The schedulable capacity of `workers` less `headroom_percent` of
    /// each pool (rounded down in the pool's favour of safety).
    pub fn of_workers(workers: &[WorkerView], headroom_percent: u32) -> Self {
        let raw = Self::new(workers.iter().filter(|v| counts(v)).map(|v| Pool {
            signature: WorkerDescription {
                name: String::new(),
                api_base_url: String::new(),
                ..v.record.description.clone()
            },
            slots: v.max_sessions,
        }));
        let keep = u64::from(100 - headroom_percent.min(100));
        Self {
            pools: raw
                .pools
                .into_iter()
                .map(|p| Pool {
                    slots: u32::try_from(u64::from(p.slots) * keep / 100).unwrap_or(u32::MAX),
                    ..p
                })
                .collect(),
            scalable: Vec::new(),
        }
    }

    /// The pools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Slots of every pool `constraints` match.
    pub fn slots_for(&self, constraints: &Constraints) -> u32 {
        self.pools
            .iter()
            .filter(|p| constraints.matches_description(&p.signature))
            .map(|p| p.slots)
            .fold(0, u32::saturating_add)
    }

    /// Students of `exams` that cannot be placed at `t`: their total
    /// demand then ([`Exam::demand_at`]) less the maximum flow from exams
    /// to the pools their constraints match.
    pub fn shortfall(&self, exams: &[&Exam], t: Timestamp) -> u32 {
        // Exams with equal constraints are one demand.
        let mut groups: Vec<(&Constraints, u64)> = Vec::new();
        for e in exams {
            let demand = u64::from(e.demand_at(t));
            match groups.iter_mut().find(|(c, _)| **c == e.constraints) {
                Some((_, d)) => *d += demand,
                None => groups.push((&e.constraints, demand)),
            }
        }
        let demand: u64 = groups.iter().map(|(_, d)| d).sum();
        // Scalable slots are pools after the workers' own.
        let n = self.pools.len();
        let edges: Vec<Vec<usize>> = groups
            .iter()
            .map(|(c, _)| {
                let pools = (0..n).filter(|&j| c.matches_description(&self.pools[j].signature));
                let scalable = (0..self.scalable.len())
                    .filter(|&j| self.scalable[j].serves(c))
                    .map(|j| n + j);
                pools.chain(scalable).collect()
            })
            .collect();
        let supply: Vec<u64> = self
            .pools
            .iter()
            .map(|p| p.slots)
            .chain(self.scalable.iter().map(|s| s.slots))
            .map(u64::from)
            .collect();
        let need: Vec<u64> = groups.iter().map(|(_, d)| *d).collect();
        let flow = max_flow(&need, &supply, &edges);
        u32::try_from(demand - flow).unwrap_or(u32::MAX)
    }
}

fn counts(v: &WorkerView) -> bool {
    v.record.accepting() && v.availability != Availability::Offline
}

/// Maximum flow source → group `i` (capacity `need[i]`) → pool `j` (when
/// `edges[i]` holds `j`, unbounded) → sink (capacity `supply[j]`), by
/// shortest augmenting paths (Edmonds–Karp). Nodes: 0 source, 1..=n groups,
/// n+1..=n+m pools, n+m+1 sink.
fn max_flow(need: &[u64], supply: &[u64], edges: &[Vec<usize>]) -> u64 {
    let (n, m) = (need.len(), supply.len());
    let nodes = n + m + 2;
    let sink = nodes - 1;
    let mut cap = vec![vec![0u64; nodes]; nodes];
    for (i, d) in need.iter().enumerate() {
        cap[0][1 + i] = *d;
        for &j in &edges[i] {
            cap[1 + i][1 + n + j] = u64::MAX / 4;
        }
    }
    for (j, s) in supply.iter().enumerate() {
        cap[1 + n + j][sink] = *s;
    }
    let mut total = 0u64;
    loop {
        let mut prev = vec![usize::MAX; nodes];
        prev[0] = 0;
        let mut queue = std::collections::VecDeque::from([0usize]);
        while let Some(u) = queue.pop_front() {
            if u == sink {
                break;
            }
            for v in 0..nodes {
                if prev[v] == usize::MAX && cap[u][v] > 0 {
                    prev[v] = u;
                    queue.push_back(v);
                }
            }
        }
        if prev[sink] == usize::MAX {
            return total;
        }
        let mut bottleneck = u64::MAX;
        let mut v = sink;
        while v != 0 {
            bottleneck = bottleneck.min(cap[prev[v]][v]);
            v = prev[v];
        }
        let mut v = sink;
        while v != 0 {
            let u = prev[v];
            cap[u][v] -= bottleneck;
            cap[v][u] = cap[v][u].saturating_add(bottleneck);
            v = u;
        }
        total += bottleneck;
    }
}

/// An exam as a refusal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamLoad {
    /// The exam.
    pub id: ExamId,
    /// Its name.
    pub name: String,
    /// Its students held at the instant named (all of them in its main
    /// window, its extended students after).
    pub students: u32,
}

/// Where and by how much booked exams exceed capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// Students that cannot be placed at the peak.
    pub missing: u32,
    /// The peak instant (the earliest, on a tie).
    pub at: Timestamp,
    /// Students every exam overlapping the peak holds then.
    pub demand: u32,
    /// Those exams, the examined one first, the others by id.
    pub overlapping: Vec<ExamLoad>,
}

/// Why an exam was not booked, and what would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The peak shortfall of the requested time.
    pub shortfall: Shortfall,
    /// The earliest start (same length) at which the exam fits, if any up
    /// to `searched_until`.
    pub earliest_start: Option<Timestamp>,
    /// The last start the search tried.
    pub searched_until: Timestamp,
}

/// Whether `candidate` fits beside `others` (any exam of `others` with the
/// candidate's id is ignored) at every instant of its window from `from`
/// on; otherwise the peak shortfall.
pub fn admit(
    candidate: &Exam,
    others: &[Exam],
    capacity: &Capacity,
    from: Timestamp,
) -> Result<(), Shortfall> {
    let window = candidate.window();
    let first = window.start.max(from);
    if first >= window.end {
        return Ok(());
    }
    let others: Vec<&Exam> = others.iter().filter(|o| o.id != candidate.id).collect();
    let mut points = BTreeSet::from([first]);
    points.extend(
        others
            .iter()
            .map(|o| o.window().start)
            .filter(|&s| first < s && s < window.end),
    );
    let mut worst: Option<Shortfall> = None;
    for t in points {
        let mut set = vec![candidate];
        set.extend(others.iter().copied().filter(|o| o.window().contains(t)));
        let missing = capacity.shortfall(&set, t);
        if missing > worst.as_ref().map_or(0, |w| w.missing) {
            let mut overlapping: Vec<ExamLoad> = set
                .iter()
                .map(|e| ExamLoad {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    students: e.demand_at(t),
                })
                .collect();
            overlapping[1..].sort_by(|a, b| a.id.cmp(&b.id));
            worst = Some(Shortfall {
                missing,
                at: t,
                demand: set
                    .iter()
                    .map(|e| e.demand_at(t))
                    .fold(0, u32::saturating_add),
                overlapping,
            });
        }
    }
    worst.map_or(Ok(()), Err)
}

/// A booked exam's shortfall against `capacity` now (the same check as
/// [`admit`]); `None` when it fits or is over.
pub fn risk(
    exam: &Exam,
    others: &[Exam],
    capacity: &Capacity,
    now: Timestamp,
) -> Option<Shortfall> {
    admit(exam, others, capacity, now).err()
}

/// How a booked exam stands against the capacity now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// It fits the fleet (or it is over).
    Fits,
    /// It fits only with the slots the scale hook may add, and its
    /// window has not begun: the workers are still awaited.
    WithScaleUp,
    /// It does not fit: the fleet's shortfall.
    Short(Shortfall),
}

/// Where `exam` stands at `now`: [`risk`] against `fleet`, and when short,
/// whether `scalable` (the fleet without the workers the scale hook
/// brought, plus what it may add) covers it while its window has not
/// begun. Once the window begins only workers that joined count, so an
/// exam whose promised workers did not arrive is at risk from then on.
pub fn fit(
    exam: &Exam,
    others: &[Exam],
    fleet: &Capacity,
    scalable: Option<&Capacity>,
    now: Timestamp,
) -> Fit {
    let Some(short) = risk(exam, others, fleet, now) else {
        return Fit::Fits;
    };
    match scalable {
        Some(c) if now < exam.window().start && admit(exam, others, c, now).is_ok() => {
            Fit::WithScaleUp
        }
        _ => Fit::Short(short),
    }
}

/// The earliest start, not before `candidate.starts_at` and at most
/// `horizon` after it, at which `candidate` (same length) fits; `None` if
/// none does.
pub fn earliest_fit(
    candidate: &Exam,
    others: &[Exam],
    capacity: &Capacity,
    from: Timestamp,
    horizon: Duration,
) -> Option<Timestamp> {
    let requested = candidate.starts_at;
    let last = requested.plus(horizon);
    let lead = Duration::from_secs(candidate.prewarm.lead_sec.into());
    let mut starts = BTreeSet::from([requested]);
    starts.extend(
        others
            .iter()
            .filter(|o| o.id != candidate.id)
            .flat_map(|o| o.demand_changes().into_iter().skip(1))
            .map(|fall| fall.plus(lead))
            .filter(|&s| requested < s && s <= last),
    );
    starts
        .into_iter()
        .find(|&s| admit(&candidate.moved_to(s), others, capacity, from).is_ok())
}

/// [`admit`], and on refusal the [`Refusal`] with the earliest fit.
pub fn decide(
    candidate: &Exam,
    others: &[Exam],
    capacity: &Capacity,
    from: Timestamp,
    horizon: Duration,
) -> Result<(), Box<Refusal>> {
    admit(candidate, others, capacity, from).map_err(|shortfall| {
        Box::new(Refusal {
            shortfall,
            earliest_start: earliest_fit(candidate, others, capacity, from, horizon),
            searched_until: candidate.starts_at.plus(horizon),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exam::tests::exam;

    fn pool(zone: Option<&str>, slots: u32) -> Pool {
        Pool {
            signature: WorkerDescription {
                zone: zone.map(str::to_owned),
                ..WorkerDescription::default()
            },
            slots,
        }
    }

    fn in_zone(mut e: Exam, zone: &str) -> Exam {
        e.constraints.zone = Some(zone.into());
        e
    }

    #[test]
    fn overlapping_exams_share_capacity() {
        let cap = Capacity::new([pool(None, 10)]);
        let a = exam("a", 100, 160, 6);
        let b = exam("b", 150, 200, 5);
        let err = admit(&b, std::slice::from_ref(&a), &cap, Timestamp(0)).unwrap_err();
        assert_eq!(err.missing, 1);
        assert_eq!(err.at, b.window().start);
        assert_eq!(err.demand, 11);
        assert_eq!(err.overlapping[0].id, b.id);
        assert_eq!(err.overlapping[1].id, a.id);
        // Back to back (teardown 5 min, lead 15 min) is fine.
        let c = exam("c", 180, 200, 5);
        assert!(admit(&c, std::slice::from_ref(&a), &cap, Timestamp(0)).is_ok());
        // The earliest fit opens c's window when a's closes: 165 + 15.
        assert_eq!(
            earliest_fit(&b, &[a], &cap, Timestamp(0), Duration::from_secs(86_400)),
            Some(Timestamp(180 * 60_000))
        );
    }

    #[test]
    fn constraints_are_a_matching_problem() {
        let cap = Capacity::new([pool(Some("a"), 4), pool(Some("b"), 4)]);
        let za = in_zone(exam("za", 100, 160, 4), "a");
        let any = exam("any", 100, 160, 4);
        // The unconstrained exam takes zone b.
        assert!(admit(&any, std::slice::from_ref(&za), &cap, Timestamp(0)).is_ok());
        // A second zone-a exam does not fit, although 4 slots are free.
        let za2 = in_zone(exam("za2", 100, 160, 1), "a");
        let err = admit(&za2, &[za.clone(), any.clone()], &cap, Timestamp(0)).unwrap_err();
        assert_eq!(err.missing, 1);
        // Nothing in zone c.
        let zc = in_zone(exam("zc", 100, 160, 1), "c");
        assert_eq!(
            earliest_fit(&zc, &[], &cap, Timestamp(0), Duration::from_secs(86_400)),
            None
        );
    }

    #[test]
    fn scalable_slots_are_per_zone_and_count_only_before_the_window() {
        let fleet = Capacity::new([pool(Some("a"), 4), pool(Some("b"), 2)]);
        let za = in_zone(exam("za", 100, 160, 10), "a");
        let zc = in_zone(exam("zc", 100, 160, 3), "c");
        let any = exam("any", 100, 160, 20);
        let exams = [za.clone(), zc.clone(), any.clone()];
        let scalable = fleet
            .clone()
            .with_scalable(exams.iter().map(|e| &e.constraints), 6);
        // Zone a: 4 + 6; zone c, unknown to the fleet, gets its own 6.
        assert!(admit(&za, &[], &scalable, Timestamp(0)).is_ok());
        assert!(admit(&zc, &[], &scalable, Timestamp(0)).is_ok());
        // Unpinned: the fleet's 6 and 6 per zone (a, b, c).
        assert!(admit(&any, &[], &scalable, Timestamp(0)).is_ok());
        let over = exam("over", 100, 160, 25);
        assert!(admit(&over, &[], &scalable, Timestamp(0)).is_err());
        // Shared: za and the unpinned exam compete for zone a's slots.
        assert!(admit(&za, std::slice::from_ref(&any), &scalable, Timestamp(0)).is_err());
        // Off, or a fleet without zones: one zone-less share.
        assert_eq!(fleet.clone().with_scalable([], 0), fleet);
        let plain = cap_plain(4).with_scalable([&Constraints::default()], 6);
        assert!(admit(&exam("p", 100, 160, 10), &[], &plain, Timestamp(0)).is_ok());
        assert!(admit(&exam("p", 100, 160, 11), &[], &plain, Timestamp(0)).is_err());
        // Before its window it fits with the scale-up; from its start only
        // the workers that joined count.
        let before = Timestamp(0);
        assert_eq!(
            fit(&za, &[], &fleet, Some(&scalable), before),
            Fit::WithScaleUp
        );
        assert!(matches!(fit(&za, &[], &fleet, None, before), Fit::Short(_)));
        let started = za.window().start;
        assert!(matches!(
            fit(&za, &[], &fleet, Some(&scalable), started),
            Fit::Short(s) if s.missing == 6
        ));
        let small = in_zone(exam("small", 100, 160, 4), "a");
        assert_eq!(fit(&small, &[], &fleet, Some(&scalable), before), Fit::Fits);
    }

    fn cap_plain(slots: u32) -> Capacity {
        Capacity::new([pool(None, slots)])
    }

    #[test]
    fn the_past_needs_no_capacity() {
        let cap = Capacity::new([pool(None, 5)]);
        let a = exam("a", 100, 160, 5);
        let b = exam("b", 100, 300, 5);
        assert!(admit(&b, std::slice::from_ref(&a), &cap, Timestamp(0)).is_err());
        assert!(admit(&b, &[a], &cap, Timestamp(170 * 60_000)).is_ok());
    }

    #[test]
    fn headroom_is_taken_per_pool_and_only_schedulable_workers_count() {
        use crate::health::HealthConfig;
        use crate::policy::AdminPolicy;
        use crate::testkit::fixtures::{FIXTURE_TIME, worker_record};
        use crate::worker::WorkerSnapshot;
        let view = |code: &str, slots: u32, zone: &str, policy: AdminPolicy| {
            let mut record = worker_record(code, slots, 0);
            record.description.zone = Some(zone.into());
            record.policy = policy;
            WorkerView::new(
                WorkerSnapshot {
                    record,
                    version: 1,
                    dispatched: 0,
                },
                FIXTURE_TIME,
                &HealthConfig::default(),
            )
        };
        let views = [
            view("w1", 8, "a", AdminPolicy::Active),
            view("w2", 8, "a", AdminPolicy::Active),
            view("w3", 5, "b", AdminPolicy::Active),
            view("w4", 8, "b", AdminPolicy::Drained),
        ];
        let cap = Capacity::of_workers(&views, 10);
        assert_eq!(cap.pools().len(), 2);
        assert_eq!(cap.slots_for(&Constraints::default()), 14 + 4);
        let b = Constraints {
            zone: Some("b".into()),
            ..Constraints::default()
        };
        assert_eq!(cap.slots_for(&b), 4);
        assert_eq!(
            Capacity::of_workers(&views, 0).slots_for(&Constraints::default()),
            21
        );
        assert_eq!(
            Capacity::of_workers(&views, 250).slots_for(&Constraints::default()),
            0
        );
    }
}
