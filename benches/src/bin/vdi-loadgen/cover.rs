//! `cover`: the time a reconcile pass takes to cover every dispatch (in
//! process only).

use std::time::Duration;

use serde_json::json;
use vdi_cluster_benches::cover::{CoverConfig, CoverReport, cover};
use vdi_cluster_benches::latency::{median, ms};
use vdi_cluster_benches::table::{Table, thousands};
use vdi_cluster_core::service::BackgroundConfig;

use crate::args::{Common, CoverArgs};
use crate::run::{Scenario, bar, on_deployment};

pub(crate) struct Cover {
    common: Common,
    config: CoverConfig,
}

impl Cover {
    pub(crate) fn new(args: CoverArgs) -> anyhow::Result<Self> {
        if args.common.http()?.is_some() {
            anyhow::bail!(
                "cover runs in process (memory, redis://…, postgres://…), not over http://"
            );
        }
        Ok(Self {
            config: args.config(),
            common: args.common,
        })
    }
}

/// The background loop's pause between two steps of a pass.
fn step_pause() -> Duration {
    BackgroundConfig::default().step_pause
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The median step and the slowest, leaving out the last (it recounts),
/// and the last.
fn step_figures(r: &CoverReport) -> (Duration, Duration, Duration) {
    let Some((last, rest)) = r.step_times.split_last() else {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    };
    let mut rest = rest.to_vec();
    rest.sort();
    let p50 = rest.get(rest.len().saturating_sub(1) / 2).copied();
    (
        p50.unwrap_or_default(),
        rest.last().copied().unwrap_or_default(),
        *last,
    )
}

impl Scenario for Cover {
    type Report = CoverReport;

    const NAME: &'static str = "cover";

    fn common(&self) -> &Common {
        &self.common
    }

    async fn run(&self, run: usize) -> anyhow::Result<CoverReport> {
        let config = &self.config;
        let progress = bar(format!("run {run} cover"));
        let report =
            on_deployment(&self.common, async |d| cover(d, config, &progress).await).await?;
        progress.finish_and_clear();
        Ok(report)
    }

    fn progress_line(&self, run: usize, r: &CoverReport) -> Option<String> {
        Some(format!(
            "run {run}: {} dispatches in {} steps, {} of work, {} with the step pauses",
            thousands(r.dispatches as f64),
            r.steps,
            secs(r.work()),
            secs(r.with_pauses(step_pause()))
        ))
    }

    fn json(&self, r: &CoverReport) -> serde_json::Value {
        let (p50, max, last) = step_figures(r);
        json!({
            "dispatches": r.dispatches, "workers": self.config.workers,
            "scanCount": self.config.scan_count, "pagesPerStep": self.config.pages_per_step,
            "fillSeconds": r.fill.as_secs_f64(),
            "steps": r.steps, "passScanned": r.pass_scanned, "passComplete": r.pass_complete,
            "stepP50Ms": p50.as_secs_f64() * 1e3, "stepMaxMs": max.as_secs_f64() * 1e3,
            "lastStepMs": last.as_secs_f64() * 1e3,
            "workSeconds": r.work().as_secs_f64(),
            "withPausesSeconds": r.with_pauses(step_pause()).as_secs_f64(),
            "operatorPassSeconds": r.operator.0.as_secs_f64(),
            "operatorScanned": r.operator.1, "operatorComplete": r.operator.2,
            "recountSeconds": r.recount.as_secs_f64(),
        })
    }

    fn title(&self) -> String {
        let c = &self.config;
        format!(
            "cover on {} — {} dispatches on {} workers, {} a page, {} pages a step ({} dispatches a step), step pause {} s",
            self.common.label(),
            thousands(c.dispatches as f64),
            c.workers,
            c.scan_count,
            c.pages_per_step,
            thousands((c.scan_count * c.pages_per_step) as f64),
            step_pause().as_secs()
        )
    }

    fn tables(&self, runs: &[CoverReport]) -> Vec<Table> {
        let mut t = Table::new([
            "run",
            "steps",
            "step p50",
            "step max",
            "last step (+ recount)",
            "pass, steps back to back",
            "pass, with step pauses",
            "operator's pass",
            "recount alone",
            "fill (untimed)",
        ]);
        for (i, r) in runs.iter().enumerate() {
            let (p50, max, last) = step_figures(r);
            t.row([
                (i + 1).to_string(),
                r.steps.to_string(),
                ms(p50),
                ms(max),
                ms(last),
                secs(r.work()),
                secs(r.with_pauses(step_pause())),
                secs(r.operator.0),
                secs(r.recount),
                secs(r.fill),
            ]);
        }
        let med = |f: &dyn Fn(&CoverReport) -> Duration| {
            let v: Vec<f64> = runs.iter().map(|r| f(r).as_secs_f64()).collect();
            Duration::from_secs_f64(median(&v).unwrap_or(0.0))
        };
        let mut m = Table::new(["median of runs", "value"]);
        m.row([
            "step (p50 of each run)".into(),
            ms(med(&|r| step_figures(r).0)),
        ]);
        m.row([
            "last step, with the recount".into(),
            ms(med(&|r| step_figures(r).2)),
        ]);
        m.row(["pass, steps back to back".into(), secs(med(&|r| r.work()))]);
        m.row([
            "pass, as the background loop runs it".into(),
            secs(med(&|r| r.with_pauses(step_pause()))),
        ]);
        m.row(["operator's pass".into(), secs(med(&|r| r.operator.0))]);
        m.row(["recount alone".into(), secs(med(&|r| r.recount))]);
        vec![t, m]
    }

    fn verdict(&self, runs: &[CoverReport]) -> (bool, Option<String>) {
        let wrong: Vec<String> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.correct())
            .map(|(i, r)| {
                format!(
                    "run {}: the pass read {} of {} (complete: {}), the operator's {} (complete: {})",
                    i + 1,
                    r.pass_scanned,
                    r.dispatches,
                    r.pass_complete,
                    r.operator.1,
                    r.operator.2
                )
            })
            .collect();
        (
            wrong.is_empty(),
            (!wrong.is_empty()).then(|| wrong.join("\n")),
        )
    }
}
