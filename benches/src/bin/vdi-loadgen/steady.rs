//! `steady`: an exam in progress, without then with reconcile (in process
//! only).

use std::time::Duration;

use serde_json::json;
use vdi_cluster_benches::latency::{Summary, median, ms};
use vdi_cluster_benches::steady::{SteadyConfig, SteadyReport, steady};
use vdi_cluster_benches::table::Table;

use crate::args::{Common, SteadyArgs};
use crate::run::{
    CallBreakdown, Scenario, bar, cpu_cells, cpu_json, latency_cells, on_deployment, summary_json,
};

pub(crate) struct Steady {
    common: Common,
    config: SteadyConfig,
}

impl Steady {
    pub(crate) fn new(args: SteadyArgs) -> anyhow::Result<Self> {
        if args.common.http()?.is_some() {
            anyhow::bail!(
                "steady runs in process (memory, redis://…, postgres://…), not over http://"
            );
        }
        Ok(Self {
            config: args.config(),
            common: args.common,
        })
    }
}

impl Scenario for Steady {
    type Report = SteadyReport;

    const NAME: &'static str = "steady";

    fn common(&self) -> &Common {
        &self.common
    }

    async fn run(&self, run: usize) -> anyhow::Result<SteadyReport> {
        let config = &self.config;
        let progress = bar(format!("run {run} steady (s)"));
        let report =
            on_deployment(&self.common, async |d| steady(d, config, &progress).await).await?;
        progress.finish_and_clear();
        Ok(report)
    }

    fn json(&self, r: &SteadyReport) -> serde_json::Value {
        let phases: Vec<_> = r
            .phases
            .iter()
            .map(|p| {
                json!({
                    "phase": p.name, "all": summary_json(&p.all),
                    "allocate": summary_json(&p.allocate),
                    "release": summary_json(&p.release),
                    "heartbeat": summary_json(&p.heartbeat),
                    "reconcile": p.reconcile.as_ref().map(summary_json),
                    "noCapacity": p.no_capacity, "errors": p.errors,
                    "cpu": cpu_json(&p.cpu, p.all.count),
                    "firstError": p.first_error,
                })
            })
            .collect();
        json!({
            "workers": self.config.workers,
            "rate": self.config.rate, "phases": phases,
            "overAllocations": r.audit.over_allocations,
            "counterDrift": r.audit.counter_drift,
        })
    }

    fn title(&self) -> String {
        let config = &self.config;
        format!(
            "steady on {} — {} replicas, {} workers × {} slots at {} % occupancy, {} ops/s, {} s per phase",
            self.common.label(),
            self.common.replicas,
            config.workers,
            config.slots,
            config.occupancy_percent,
            config.rate,
            config.phase.as_secs()
        )
    }

    fn tables(&self, runs: &[SteadyReport]) -> Vec<Table> {
        let mut t = Table::new([
            "run",
            "phase",
            "ops/s",
            "p50",
            "p95",
            "p99",
            "max",
            "alloc p99",
            "release p99",
            "heartbeat p99",
            "reconcile passes",
            "pass p50",
            "errors",
            "client µs/op",
            "server µs/op",
            "machine busy",
        ]);
        for (i, r) in runs.iter().enumerate() {
            for p in &r.phases {
                let mut row = vec![(i + 1).to_string(), p.name.into()];
                row.extend(latency_cells(&p.all));
                row.extend([
                    ms(p.allocate.p99),
                    ms(p.release.p99),
                    ms(p.heartbeat.p99),
                    p.reconcile.map_or("-".into(), |s| s.count.to_string()),
                    p.reconcile.map_or("-".into(), |s| ms(s.p50)),
                    p.errors.to_string(),
                ]);
                row.extend(cpu_cells(&p.cpu, p.all.count));
                t.row(row);
            }
        }
        let ratio = |q: fn(&Summary) -> Duration| {
            median(
                &runs
                    .iter()
                    .filter(|r| r.phases.len() == 2)
                    .map(|r| {
                        q(&r.phases[1].all).as_secs_f64()
                            / q(&r.phases[0].all).as_secs_f64().max(1e-9)
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap_or(0.0)
        };
        let mut m = Table::new(["median of runs", "value"]);
        m.row([
            "p50 with ÷ without reconcile".into(),
            format!("{:.2}", ratio(|s| s.p50)),
        ]);
        m.row([
            "p99 with ÷ without reconcile".into(),
            format!("{:.2}", ratio(|s| s.p99)),
        ]);
        let over: u64 = runs.iter().map(|r| r.audit.over_allocations).sum();
        m.row(["over-allocations (all runs)".into(), over.to_string()]);
        vec![t, m]
    }

    fn breakdowns<'a>(&self, runs: &'a [SteadyReport]) -> Vec<CallBreakdown<'a>> {
        let Some(last) = runs.last() else {
            return Vec::new();
        };
        last.phases
            .iter()
            .filter_map(|p| {
                let calls = p.breakdown.as_ref()?;
                Some((
                    format!("store call ({}, last run)", p.name),
                    calls,
                    p.all.count,
                ))
            })
            .collect()
    }

    fn verdict(&self, runs: &[SteadyReport]) -> (bool, Option<String>) {
        let first = runs
            .iter()
            .flat_map(|r| &r.phases)
            .find_map(|p| p.first_error.as_ref());
        let correct = runs.iter().all(|r| {
            r.audit.over_allocations == 0
                && r.audit.counter_drift == 0
                && r.phases.iter().all(|p| p.errors == 0)
        });
        (correct, first.map(|e| format!("first error: {e}")))
    }
}
