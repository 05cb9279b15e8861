//! Property tests of the pure domain: capacity against an exact oracle,
//! the prewarm planner, and the scheduler's ranking.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;
use vdi_cluster_core::capacity::{
    CapacityInput, CapacitySpec, MAX_CPU_CORES, MAX_MEMORY_MB, Millicores,
};
use vdi_cluster_core::health::{HealthConfig, HeartbeatStamp};
use vdi_cluster_core::ids::WorkerId;
use vdi_cluster_core::scheduler::{
    ChoiceReason, Constraints, RankOptions, SchedulingPolicy, exclusion, plan_prewarm, rank,
};
use vdi_cluster_core::store::ExamPlacement;
use vdi_cluster_core::worker::{WorkerDescription, WorkerRecord, WorkerSnapshot, WorkerView};
use vdi_cluster_core::{AdminPolicy, Timestamp};

/// Renders thousandths as the decimal text a JSON body would carry.
fn decimal(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

/// The largest k with k * vm <= total - reserved, by binary search over
/// exact integers: an oracle independent of the division in the code.
fn oracle_fit(total: u128, reserved: u128, vm: u128) -> u128 {
    if reserved >= total {
        return 0;
    }
    let room = total - reserved;
    let (mut lo, mut hi) = (0u128, room + 1);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if mid * vm <= room { lo = mid } else { hi = mid }
    }
    lo
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Capacity over the whole valid range equals the exact oracle, for CPU
    /// given as decimal text parsed into f64 (as JSON does).
    #[test]
    fn capacity_matches_exact_oracle(
        total_cpu in 0u64..=MAX_CPU_CORES * 1000,
        reserved_cpu in 0u64..=MAX_CPU_CORES * 1000,
        vm_cpu in 1u64..=64_000,
        total_mem in 0u64..=MAX_MEMORY_MB,
        reserved_mem in 0u64..=MAX_MEMORY_MB,
        vm_mem in 1u64..=1 << 20,
        used in 0u32..10_000,
    ) {
        let parse = |m: u64| decimal(m).parse::<f64>().unwrap();
        let spec = CapacitySpec::new(CapacityInput {
            total_cpu_cores: parse(total_cpu),
            total_memory_mb: total_mem,
            reserved_cpu_cores: parse(reserved_cpu),
            reserved_memory_mb: reserved_mem,
            vm_cpu_cores: parse(vm_cpu),
            vm_memory_mb: vm_mem,
        }).unwrap();
        prop_assert_eq!(spec.total_cpu, Millicores(total_cpu));
        prop_assert_eq!(spec.vm_cpu, Millicores(vm_cpu));
        let by_cpu = oracle_fit(total_cpu.into(), reserved_cpu.into(), vm_cpu.into());
        let by_mem = oracle_fit(total_mem.into(), reserved_mem.into(), vm_mem.into());
        let expected = by_cpu.min(by_mem);
        prop_assert_eq!(u128::from(spec.max_sessions()), expected);
        prop_assert_eq!(u128::from(spec.available_sessions(used)), expected.saturating_sub(used.into()));
        prop_assert_eq!(spec.warning().is_some(), reserved_cpu > total_cpu || reserved_mem > total_mem);
        // The exact decimal parser agrees with the f64 path.
        prop_assert_eq!(Millicores::parse("x", &decimal(vm_cpu)).unwrap(), Millicores(vm_cpu));
    }

    /// More than three decimals of a core is always refused, naming the field.
    #[test]
    fn sub_millicore_precision_is_refused(whole in 0u64..1000, tenths_of_milli in 1u64..10) {
        let cores: f64 = format!("{whole}.123{tenths_of_milli}").parse().unwrap();
        let err = Millicores::from_cores("vmCpuCores", cores).unwrap_err();
        prop_assert_eq!(err.field, "vmCpuCores");
    }

    /// Any f64 is either accepted as exact thousandths or refused; never a panic.
    #[test]
    fn any_float_is_handled(x in any::<f64>()) {
        if let Ok(m) = Millicores::from_cores("totalCpuCores", x) {
            prop_assert!(x.is_finite() && x >= 0.0);
            prop_assert!((m.0 as f64 / 1000.0 - x).abs() < 1e-6);
        }
    }

    /// The prewarm plan: total, caps, per-worker bounds and proportionality
    /// (every share is its exact quota rounded down or up).
    #[test]
    fn prewarm_plan_properties(
        available in proptest::collection::vec(0u32..60, 0..30),
        requested in 0u32..500,
        max in 0u32..200,
    ) {
        let workers: Vec<(WorkerId, u32)> = available
            .iter()
            .enumerate()
            .map(|(i, a)| (WorkerId::parse("code", format!("w{i:02}")).unwrap(), *a))
            .collect();
        let plan = plan_prewarm(&workers, requested, max);
        let sum: u64 = available.iter().map(|a| u64::from(*a)).sum();
        let total = u64::from(requested).min(sum).min(u64::from(max));
        prop_assert_eq!(plan.iter().map(|s| u64::from(s.count)).sum::<u64>(), total);
        let by_worker: BTreeMap<&WorkerId, u32> = workers.iter().map(|(w, a)| (w, *a)).collect();
        let mut seen = HashSet::new();
        for share in &plan {
            prop_assert!(seen.insert(share.worker.clone()), "worker listed twice");
            let a = by_worker[&share.worker];
            prop_assert!(share.count >= 1 && share.count <= a);
            // |share - total * a / sum| < 1, in exact integers.
            let exact = u128::from(total) * u128::from(a);
            let scaled = u128::from(share.count) * u128::from(sum);
            prop_assert!(scaled + u128::from(sum) > exact && scaled < exact + u128::from(sum));
        }
    }
}

const NOW: Timestamp = Timestamp(10_000_000);

#[derive(Debug, Clone)]
struct Spec {
    slots: u32,
    reported: u32,
    dispatched: u32,
    silent_secs: Option<u64>,
    policy: u8,
    zone: u8,
    gpu: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u32..8,
        0u32..8,
        0u32..8,
        proptest::option::of(0u64..900),
        0u8..6,
        0u8..3,
        any::<bool>(),
    )
        .prop_map(
            |(slots, reported, dispatched, silent_secs, policy, zone, gpu)| Spec {
                slots,
                reported,
                dispatched,
                silent_secs,
                policy,
                zone,
                gpu,
            },
        )
}

fn view(i: usize, s: &Spec) -> WorkerView {
    let id = WorkerId::parse("code", format!("w{i:03}")).unwrap();
    let mut description = WorkerDescription {
        zone: Some(format!("zone-{}", s.zone)),
        ..Default::default()
    };
    if s.gpu {
        description.capabilities.insert("gpu".into());
    }
    let mut r = WorkerRecord::registered(id, description, Timestamp(0));
    r.capacity = Some(
        CapacitySpec::new(CapacityInput {
            total_cpu_cores: f64::from(s.slots),
            total_memory_mb: u64::from(s.slots) * 1024,
            reserved_cpu_cores: 0.0,
            reserved_memory_mb: 0,
            vm_cpu_cores: 1.0,
            vm_memory_mb: 1024,
        })
        .unwrap(),
    );
    r.reported_active = s.reported;
    r.unrecorded = s.reported;
    r.last_heartbeat_at = s
        .silent_secs
        .map(|secs| NOW.minus(Duration::from_secs(secs)));
    r.stamp = Some(HeartbeatStamp::default());
    r.policy = match s.policy {
        0..=2 => AdminPolicy::Active,
        3 => AdminPolicy::Draining { deadline: None },
        4 => AdminPolicy::Drained,
        _ => AdminPolicy::Disabled { forced: false },
    };
    let snapshot = WorkerSnapshot {
        record: r,
        version: 1,
        dispatched: s.dispatched,
    };
    WorkerView::new(snapshot, NOW, &HealthConfig::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Ranking never offers an ineligible worker, offers each at most once,
    /// accounts for every worker, puts an eligible sticky worker first, and
    /// is deterministic for a given seed.
    #[test]
    fn ranking_offers_only_eligible_workers(
        specs in proptest::collection::vec(spec(), 0..40),
        sticky in proptest::option::of(0usize..40),
        affinity in proptest::collection::btree_map(0usize..40, 1u32..5, 0..6),
        tried in proptest::collection::hash_set(0usize..40, 0..5),
        zone in proptest::option::of(0u8..3),
        need_gpu in any::<bool>(),
        pack in any::<bool>(),
        use_affinity in any::<bool>(),
        herd_width in 1usize..4,
        seed in any::<u64>(),
        limit in 1usize..50,
    ) {
        let views: Vec<WorkerView> = specs.iter().enumerate().map(|(i, s)| view(i, s)).collect();
        let id = |i: usize| WorkerId::parse("code", format!("w{i:03}")).unwrap();
        let placement = ExamPlacement::new(
            sticky.map(id),
            affinity.iter().map(|(i, n)| (id(*i), *n)).collect(),
        );
        let tried: HashSet<WorkerId> = tried.into_iter().map(id).collect();
        let mut constraints = Constraints { zone: zone.map(|z| format!("zone-{z}")), ..Default::default() };
        if need_gpu {
            constraints.capabilities.insert("gpu".into());
        }
        let options = RankOptions {
            policy: if pack { SchedulingPolicy::Pack } else { SchedulingPolicy::Spread },
            exam_affinity: use_affinity,
            herd_width,
            seed,
            limit,
        };
        let (ranking, accounting) = rank(&views, &constraints, &placement, &tried, &options);
        let eligible: Vec<&WorkerView> = views.iter().filter(|v| exclusion(v, &constraints, &tried).is_none()).collect();
        prop_assert_eq!(accounting.eligible, eligible.len());
        let mut expected = vdi_cluster_core::scheduler::Exclusions::default();
        for v in &views {
            if let Some(reason) = exclusion(v, &constraints, &tried) {
                expected.add(reason);
            }
        }
        prop_assert_eq!(&accounting.excluded, &expected);
        prop_assert_eq!(accounting.eligible + accounting.excluded.total() as usize, views.len());
        prop_assert_eq!(ranking.candidates.len(), eligible.len().min(limit));
        let mut seen = HashSet::new();
        for c in &ranking.candidates {
            prop_assert!(seen.insert(c.worker.clone()), "offered twice");
            let v = views.iter().find(|v| v.id() == &c.worker).unwrap();
            prop_assert!(v.is_schedulable());
            prop_assert!(exclusion(v, &constraints, &tried).is_none());
        }
        if let Some(s) = &placement.sticky
            && eligible.iter().any(|v| v.id() == s)
        {
            prop_assert_eq!(&ranking.candidates[0].worker, s);
            prop_assert_eq!(ranking.candidates[0].reason, ChoiceReason::Sticky);
        }
        // Affinity candidates come before policy ones, by sessions held.
        let reasons: Vec<&ChoiceReason> = ranking.candidates.iter().map(|c| &c.reason).collect();
        let first_policy = reasons.iter().position(|r| matches!(r, ChoiceReason::Policy { .. })).unwrap_or(reasons.len());
        let is_policy = |r: &&ChoiceReason| matches!(r, ChoiceReason::Policy { .. });
        prop_assert!(reasons[first_policy..].iter().all(is_policy), "policy candidates come last");
        if !use_affinity {
            let is_affinity = |r: &&ChoiceReason| matches!(r, ChoiceReason::Affinity { .. });
            prop_assert!(!reasons.iter().any(is_affinity), "affinity is off");
        }
        // Same seed, same answer.
        prop_assert_eq!(rank(&views, &constraints, &placement, &tried, &options).0, ranking);
    }

    /// Without herd damping, `spread` orders by free slots descending and
    /// `pack` ascending; the best worker by policy is always first — for
    /// the whole fleet and within a zone or capability.
    #[test]
    fn policy_order(
        specs in proptest::collection::vec(spec(), 1..40),
        pack in any::<bool>(),
        seed in any::<u64>(),
        zone in proptest::option::of(0u8..3),
        need_gpu in any::<bool>(),
    ) {
        let views: Vec<WorkerView> = specs.iter().enumerate().map(|(i, s)| view(i, s)).collect();
        let mut constraints = Constraints { zone: zone.map(|z| format!("zone-{z}")), ..Default::default() };
        if need_gpu {
            constraints.capabilities.insert("gpu".into());
        }
        let options = RankOptions {
            policy: if pack { SchedulingPolicy::Pack } else { SchedulingPolicy::Spread },
            exam_affinity: false,
            herd_width: 1,
            seed,
            limit: 100,
        };
        let (ranking, _) = rank(&views, &constraints, &ExamPlacement::default(), &HashSet::new(), &options);
        let free: Vec<u32> = ranking.candidates.iter().map(|c| c.available_sessions).collect();
        let eligible = views.iter().filter(|v| exclusion(v, &constraints, &HashSet::new()).is_none()).count();
        prop_assert_eq!(ranking.candidates.len(), eligible.min(100));
        for pair in free.windows(2) {
            if pack { prop_assert!(pair[0] <= pair[1]) } else { prop_assert!(pair[0] >= pair[1]) }
        }
    }
}
