//! `heartbeat`: every worker heartbeats as fast as it can.

use serde_json::json;
use vdi_cluster_benches::heartbeat::{HeartbeatConfig, HeartbeatReport, heartbeats_on};
use vdi_cluster_benches::latency::median;
use vdi_cluster_benches::table::{Table, thousands};

use crate::args::{Common, HeartbeatArgs};
use crate::run::{Scenario, bar, cpu_cells, cpu_json, latency_cells, on_target, summary_json};

pub(crate) struct Heartbeat {
    common: Common,
    config: HeartbeatConfig,
}

impl Heartbeat {
    pub(crate) fn new(args: HeartbeatArgs) -> Self {
        Self {
            config: args.config(),
            common: args.common,
        }
    }
}

impl Scenario for Heartbeat {
    type Report = HeartbeatReport;

    const NAME: &'static str = "heartbeat";

    fn common(&self) -> &Common {
        &self.common
    }

    async fn run(&self, run: usize) -> anyhow::Result<HeartbeatReport> {
        let config = &self.config;
        let progress = bar(format!("run {run} heartbeats"));
        let report = on_target(
            &self.common,
            config.workers,
            false,
            async |target, probe| heartbeats_on(&target, probe, config, &progress).await,
        )
        .await?;
        progress.finish_and_clear();
        Ok(report)
    }

    fn json(&self, r: &HeartbeatReport) -> serde_json::Value {
        json!({
            "workers": self.config.workers,
            "concurrency": self.config.concurrency,
            "latency": summary_json(&r.latency), "accepted": r.accepted,
            "stale": r.stale, "errors": r.errors,
            "cpu": cpu_json(&r.cpu, r.latency.count),
            "firstError": r.first_error,
        })
    }

    fn title(&self) -> String {
        format!(
            "heartbeat on {} — {} replicas, {} workers, concurrency {}",
            self.common.label(),
            self.common.replicas,
            self.config.workers,
            self.config.concurrency
        )
    }

    fn tables(&self, runs: &[HeartbeatReport]) -> Vec<Table> {
        let mut t = Table::new([
            "run",
            "heartbeats/s",
            "p50",
            "p95",
            "p99",
            "max",
            "applied",
            "stale",
            "errors",
            "client µs/op",
            "server µs/op",
            "machine busy",
        ]);
        for (i, r) in runs.iter().enumerate() {
            let mut row = vec![(i + 1).to_string()];
            row.extend(latency_cells(&r.latency));
            row.extend([
                r.accepted.to_string(),
                r.stale.to_string(),
                r.errors.to_string(),
            ]);
            row.extend(cpu_cells(&r.cpu, r.latency.count));
            t.row(row);
        }
        let rates: Vec<f64> = runs.iter().map(|r| r.latency.rate()).collect();
        let p99s: Vec<f64> = runs
            .iter()
            .map(|r| r.latency.p99.as_secs_f64() * 1e3)
            .collect();
        t.row([
            "median".into(),
            thousands(median(&rates).unwrap_or(0.0)),
            String::new(),
            String::new(),
            format!("{:.2} ms", median(&p99s).unwrap_or(0.0)),
        ]);
        vec![t]
    }

    fn verdict(&self, runs: &[HeartbeatReport]) -> (bool, Option<String>) {
        let first = runs.iter().find_map(|r| r.first_error.as_ref());
        (
            runs.iter().all(|r| r.errors == 0),
            first.map(|e| format!("first error: {e}")),
        )
    }
}
