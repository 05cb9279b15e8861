//! Criterion benches of the pure domain and the in-memory backend.
//!
//! Run with: `cargo bench -p vdi-cluster-benches --bench domain`

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Bencher, BenchmarkId, Criterion, criterion_group, criterion_main};
use vdi_cluster_benches::fleet::{self, fleet_views, register_fleet};
use vdi_cluster_core::capacity::{CapacityInput, CapacitySpec};
use vdi_cluster_core::scheduler::{
    Constraints, PlacementRevision, RankIndex, RankOptions, plan_prewarm,
};
use vdi_cluster_core::store::{ExamPlacement, ReserveRequest};
use vdi_cluster_core::testkit::SimulatedWorkers;
use vdi_cluster_core::{
    ClusterService, Dispatch, DispatchStore, MemoryStore, ServiceConfig, SessionKey, Timestamp,
    WorkerId,
};

fn capacity(c: &mut Criterion) {
    let input = CapacityInput {
        total_cpu_cores: 32.0,
        total_memory_mb: 65_536,
        reserved_cpu_cores: 4.0,
        reserved_memory_mb: 8192,
        vm_cpu_cores: 1.5,
        vm_memory_mb: 2048,
    };
    c.bench_function("capacity/validate+max_sessions", |b| {
        b.iter(|| CapacitySpec::new(black_box(input)).map(|s| s.max_sessions()))
    });
}

/// One unconstrained ranking decision per iteration, each with the next
/// seed (as successive requests to one replica).
fn decide(b: &mut Bencher<'_>, index: &RankIndex, placement: &ExamPlacement) {
    let (constraints, tried) = (Constraints::default(), HashSet::new());
    let mut seed = 0u64;
    b.iter(|| {
        seed += 1;
        let options = RankOptions {
            seed,
            ..RankOptions::default()
        };
        index.rank(&constraints, placement, &tried, &options)
    })
}

/// The placement hints of an exam already on the first `k` workers of
/// `index`, with 1–7 sessions each.
fn spread(index: &RankIndex, k: usize) -> ExamPlacement {
    ExamPlacement::new(
        None,
        index
            .views()
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, v)| (v.id().clone(), 1 + (i % 7) as u32))
            .collect(),
    )
}

fn ranking(c: &mut Criterion) {
    let mut group = c.benchmark_group("rank");
    for n in [100usize, 1_000, 10_000, 100_000] {
        let index = RankIndex::new(fleet_views(n, 20));
        let placement = ExamPlacement::default();
        let tried = HashSet::new();
        group.bench_with_input(BenchmarkId::new("decision", n), &index, |b, index| {
            decide(b, index, &placement)
        });
        // The same decision with a constraint: the walk takes the smallest
        // facet the constraint names (a quarter of the fleet for the zone,
        // a tenth for the label, an eighth for the capability).
        let constraints = [
            (
                "decision-with-zone",
                Constraints {
                    zone: Some("zone-a".into()),
                    ..Constraints::default()
                },
            ),
            (
                "decision-with-label",
                Constraints {
                    labels: [("room".to_owned(), "r3".to_owned())].into(),
                    ..Constraints::default()
                },
            ),
            (
                "decision-with-capability",
                Constraints {
                    capabilities: ["gpu".to_owned()].into(),
                    ..Constraints::default()
                },
            ),
        ];
        for (name, constraint) in &constraints {
            group.bench_with_input(BenchmarkId::new(*name, n), &index, |b, index| {
                b.iter(|| index.rank(constraint, &placement, &tried, &RankOptions::default()))
            });
        }
    }
    // Exam affinity: the exam already holds sessions on `k` workers (the
    // first `k` of the fleet, 1–7 sessions each). A growth table with the
    // exam spread over min(n, 1,000) workers, then the spread alone at
    // 100,000 workers.
    for n in [100usize, 1_000, 10_000, 100_000] {
        let index = RankIndex::new(fleet_views(n, 20));
        let placement = spread(&index, n.min(1_000));
        group.bench_with_input(
            BenchmarkId::new("decision-with-affinity-1000", n),
            &placement,
            |b, placement| decide(b, &index, placement),
        );
    }
    let index = RankIndex::new(fleet_views(100_000, 20));
    for k in [10usize, 100, 1_000] {
        let placement = spread(&index, k);
        group.bench_with_input(
            BenchmarkId::new("decision-100000-with-affinity", k),
            &placement,
            |b, placement| decide(b, &index, placement),
        );
    }
    // The decisions above reuse the order of the exam's affine workers the
    // index keeps per revision of the hints. What it costs: a decision on
    // hints the index has not ordered yet (every fresh read of the hints,
    // once per snapshot), and a decision after this replica's own
    // placement moved the hints (one worker moves in the order).
    for k in [10usize, 100, 1_000] {
        let mut placement = spread(&index, k);
        group.bench_function(BenchmarkId::new("affinity-order-build", k), |b| {
            b.iter(|| {
                placement.revision = PlacementRevision::default();
                index.rank(
                    &Constraints::default(),
                    &placement,
                    &HashSet::new(),
                    &RankOptions::default(),
                )
            })
        });
    }
    let mut placement = spread(&index, 1_000);
    let workers: Vec<WorkerId> = placement.affinity.keys().cloned().collect();
    let mut n = 0;
    group.bench_function(
        BenchmarkId::new("decision-100000-with-affinity-after-placed", 1_000),
        |b| {
            b.iter(|| {
                n += 1;
                placement.placed(&workers[n % workers.len()]);
                let options = RankOptions {
                    seed: n as u64,
                    ..RankOptions::default()
                };
                index.rank(
                    &Constraints::default(),
                    &placement,
                    &HashSet::new(),
                    &options,
                )
            })
        },
    );
    // One worker's change applied to the index (its free slots move it in
    // the policy order and its facets' orders), alternating between two
    // counts; the view's copy is made outside the timing.
    for n in [100usize, 1_000, 10_000, 100_000] {
        let views = fleet_views(n, 20);
        let before = views[n / 2].clone();
        let mut after = before.clone();
        after.available_sessions = (before.available_sessions + 7) % 21;
        let mut index = RankIndex::new(views);
        let mut k = 0u64;
        group.bench_function(BenchmarkId::new("index-update-one", n), |b| {
            b.iter_batched(
                || {
                    k += 1;
                    if k.is_multiple_of(2) {
                        before.clone()
                    } else {
                        after.clone()
                    }
                },
                |view| index.upsert(view),
                BatchSize::SmallInput,
            )
        });
    }
    // Building the index from a fresh read of the fleet (what a snapshot
    // refresh did before), and refreshing a kept index from a read in which
    // one worker changed (what it does now: every worker compared, one
    // moved); the read's copy is made outside the timing. Slow at 100,000
    // workers, so fewer samples.
    group.sample_size(10);
    for n in [100usize, 1_000, 10_000, 100_000] {
        let views = fleet_views(n, 20);
        group.bench_with_input(BenchmarkId::new("index-build", n), &views, |b, views| {
            b.iter(|| RankIndex::new(views.clone()))
        });
        let mut changed = views.clone();
        changed[n / 2].available_sessions = (changed[n / 2].available_sessions + 7) % 21;
        let mut index = RankIndex::new(views.clone());
        let mut k = 0u64;
        group.bench_function(BenchmarkId::new("index-refresh-one-changed", n), |b| {
            b.iter_batched(
                || {
                    k += 1;
                    if k.is_multiple_of(2) {
                        views.clone()
                    } else {
                        changed.clone()
                    }
                },
                |read| index.refresh(read),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn prewarm(c: &mut Criterion) {
    let workers: Vec<(WorkerId, u32)> = (0..500)
        .map(|i| {
            (
                WorkerId::parse("code", format!("w{i}")).unwrap(),
                (i % 20) as u32,
            )
        })
        .collect();
    c.bench_function("prewarm/plan 80 over 500 workers", |b| {
        b.iter(|| plan_prewarm(black_box(&workers), 80, 80))
    });
}

fn memory_reserve(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let ids = rt.block_on(register_fleet(store.as_ref(), 500, 20));
    let mut i = 0u64;
    c.bench_function("memory/compare-and-reserve + release", |b| {
        b.iter(|| {
            i += 1;
            let key = SessionKey::parse("exam", format!("u{i}")).unwrap();
            let worker = ids[(i % ids.len() as u64) as usize].clone();
            let request = ReserveRequest {
                dispatch: Dispatch::reserve(key.clone(), worker, Timestamp(1), None, None),
                supersede: None,
                permit: None,
            };
            rt.block_on(async {
                store.reserve(&request).await.unwrap();
                store.release(&key, None, None, None).await.unwrap();
            })
        })
    });
}

/// The whole orchestration over the in-memory backend: what one allocate
/// (existing-dispatch check, placement, ranking from the cached snapshot,
/// compare-and-reserve, simulated worker call, confirm) and one release
/// cost in CPU, with no network. The load generator's `surge` adds the
/// backend's round trips to this.
fn service(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let workers = SimulatedWorkers::new();
    let service = ClusterService::builder(Arc::new(MemoryStore::new()), Arc::new(workers))
        .config(ServiceConfig {
            seed: 7,
            ..ServiceConfig::default()
        })
        .build();
    rt.block_on(async {
        for i in 0..500 {
            service
                .fleet()
                .heartbeat(fleet::heartbeat(i, 20, 0, "boot", 1))
                .await
                .unwrap();
        }
    });
    let mut group = c.benchmark_group("service");
    let mut i = 0u64;
    group.bench_function("allocate+release/memory/500 workers", |b| {
        b.iter(|| {
            i += 1;
            let key = SessionKey::parse(format!("exam-{}", i % 10), format!("u{i}")).unwrap();
            rt.block_on(async {
                service
                    .placement()
                    .allocate(key.clone(), Default::default())
                    .await
                    .unwrap();
                service.placement().release(&key).await.unwrap();
            })
        })
    });
    let mut seq = 1u64;
    group.bench_function("heartbeat/memory/500 workers", |b| {
        b.iter(|| {
            seq += 1;
            let hb = fleet::heartbeat((seq % 500) as usize, 20, 0, "boot", seq);
            rt.block_on(service.fleet().heartbeat(hb)).unwrap()
        })
    });
    group.bench_function("snapshot-refresh/memory/500 workers", |b| {
        b.iter(|| {
            rt.block_on(service.fleet().worker_views())
                .map(RankIndex::new)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, capacity, ranking, prewarm, memory_reserve, service);
criterion_main!(benches);
