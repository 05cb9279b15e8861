//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the
//! regression test that replays every committed input
//! (`fuzz/regressions/<target>/*`). Each one panics only on a real bug.

use std::collections::HashSet;

use crate::capacity::{CapacityInput, CapacitySpec, Millicores};
use crate::health::HealthConfig;
use crate::ids::{ExamId, UserId, WorkerId};
use crate::scheduler::{
    Constraints, ExamPlacement, RankOptions, SchedulingPolicy, exclusion, plan_prewarm, rank,
};
use crate::time::Timestamp;
use crate::worker::{WorkerDescription, WorkerRecord, WorkerSnapshot, WorkerView};

/// Capacity parsing and arithmetic: six comma-separated figures in the exam
/// platform's order; whatever parses must give a slot count that agrees with the
/// floating-point path and never panics.
pub fn capacity(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let fields: Vec<&str> = text.split(',').collect();
    if let Ok(bits) = <[u8; 8]>::try_from(data.get(..8).unwrap_or_default()) {
        let _ = Millicores::from_cores("x", f64::from_le_bytes(bits));
    }
    if fields.len() != 6 {
        return;
    }
    let cpu = |i: usize| Millicores::parse("cpu", fields[i]).ok();
    let mem = |i: usize| fields[i].trim().parse::<u64>().ok();
    let (Some(tc), Some(rc), Some(vc)) = (cpu(0), cpu(2), cpu(4)) else {
        return;
    };
    let (Some(tm), Some(rm), Some(vm)) = (mem(1), mem(3), mem(5)) else {
        return;
    };
    let Ok(spec) = CapacitySpec::new(CapacityInput {
        total_cpu_cores: tc.as_cores(),
        total_memory_mb: tm,
        reserved_cpu_cores: rc.as_cores(),
        reserved_memory_mb: rm,
        vm_cpu_cores: vc.as_cores(),
        vm_memory_mb: vm,
    }) else {
        return;
    };
    assert_eq!(
        (spec.total_cpu, spec.reserved_cpu, spec.vm_cpu),
        (tc, rc, vc)
    );
    let slots = spec.max_sessions();
    let by_cpu = tc.0.saturating_sub(rc.0) / vc.0;
    let by_mem = tm.saturating_sub(rm) / vm;
    assert_eq!(u64::from(slots), by_cpu.min(by_mem));
    assert!(spec.available_sessions(u32::MAX) == 0);
}

/// Identifier validation: whatever is accepted survives a JSON round trip
/// unchanged and is within the documented bounds.
pub fn identifiers(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(w) = WorkerId::parse("code", text.clone()) {
        assert!(w.as_str().len() <= crate::ids::MAX_WORKER_CODE_LEN);
        let json = serde_json::to_string(&w).expect("serialize");
        assert_eq!(
            serde_json::from_str::<WorkerId>(&json).expect("round trip"),
            w
        );
    }
    if let Ok(e) = ExamId::parse("examId", text.clone()) {
        assert!(!e.as_str().chars().any(char::is_control));
        let json = serde_json::to_string(&e).expect("serialize");
        assert_eq!(
            serde_json::from_str::<ExamId>(&json).expect("round trip"),
            e
        );
    }
    let _ = UserId::parse("userId", text);
}

/// Ranking and prewarm planning over workers described by 5-byte records:
/// only eligible workers are offered, each once, and plans respect caps.
pub fn ranking(data: &[u8]) {
    let now = Timestamp(1_000_000_000);
    let views: Vec<WorkerView> = data
        .chunks_exact(5)
        .take(64)
        .enumerate()
        .map(|(i, b)| {
            let id = WorkerId::parse("code", format!("w{i}")).expect("valid code");
            let mut r = WorkerRecord::registered(id, WorkerDescription::default(), Timestamp(0));
            r.capacity = CapacitySpec::new(CapacityInput {
                total_cpu_cores: f64::from(b[0] % 16),
                total_memory_mb: u64::from(b[0] % 16) * 1024,
                reserved_cpu_cores: 0.0,
                reserved_memory_mb: 0,
                vm_cpu_cores: 1.0,
                vm_memory_mb: 1024,
            })
            .ok();
            r.reported_active = u32::from(b[1] % 16);
            r.unrecorded = u32::from(b[2] % 16);
            r.last_heartbeat_at = (b[2] % 4 != 0)
                .then(|| now.minus(std::time::Duration::from_secs(u64::from(b[2]) * 4)));
            r.policy = match b[3] % 4 {
                0 => crate::AdminPolicy::Draining { deadline: None },
                1 => crate::AdminPolicy::Disabled { forced: false },
                _ => crate::AdminPolicy::Active,
            };
            let snapshot = WorkerSnapshot {
                record: r,
                version: 1,
                dispatched: u32::from(b[4] % 16),
            };
            WorkerView::new(snapshot, now, &HealthConfig::default())
        })
        .collect();
    let seed = data
        .iter()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b));
    let placement = ExamPlacement::new(
        views.get(data.len() % 7).map(|v| v.id().clone()),
        views
            .iter()
            .step_by(3)
            .map(|v| (v.id().clone(), 1))
            .collect(),
    );
    let options = RankOptions {
        policy: if seed % 2 == 0 {
            SchedulingPolicy::Spread
        } else {
            SchedulingPolicy::Pack
        },
        seed,
        limit: 1 + (seed % 20) as usize,
        ..RankOptions::default()
    };
    let tried = HashSet::new();
    let (ranking, accounting) = rank(
        &views,
        &Constraints::default(),
        &placement,
        &tried,
        &options,
    );
    let mut seen = HashSet::new();
    for c in &ranking.candidates {
        assert!(seen.insert(c.worker.clone()));
        let v = views
            .iter()
            .find(|v| v.id() == &c.worker)
            .expect("offered worker exists");
        assert!(exclusion(v, &Constraints::default(), &tried).is_none());
    }
    assert_eq!(
        accounting.eligible + accounting.excluded.total() as usize,
        views.len()
    );
    let free: Vec<(WorkerId, u32)> = views
        .iter()
        .map(|v| (v.id().clone(), v.available_sessions))
        .collect();
    let plan = plan_prewarm(&free, (seed % 300) as u32, 80);
    assert!(plan.iter().map(|s| s.count).sum::<u32>() <= 80);
}
