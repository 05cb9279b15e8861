//! `surge`: ours, then the raw ceiling and the naive baseline of the same
//! backend, in every run.

use serde_json::json;
use vdi_cluster_benches::baseline::{BaselineReport, naive, raw_ceiling};
use vdi_cluster_benches::deploy::Backend;
use vdi_cluster_benches::latency::{median, ms};
use vdi_cluster_benches::surge::{SurgeConfig, SurgeReport, surge_on};
use vdi_cluster_benches::table::{Table, thousands};

use crate::args::{Common, SurgeArgs};
use crate::run::{
    CallBreakdown, Scenario, bar, cpu_cells, cpu_json, latency_cells, on_deployment, on_target,
    summary_json,
};

/// One run: ours, the baselines measured beside it, and (with
/// `--booked`) ours again with the exams booked.
pub(crate) struct SurgeRun {
    ours: SurgeReport,
    booked: Option<SurgeReport>,
    /// Over HTTP with `--vs-in-process`: the same surge with the replicas
    /// in this process on the servers' backend.
    in_process: Option<SurgeReport>,
    raw: Option<BaselineReport>,
    naive: Option<BaselineReport>,
}

pub(crate) struct Surge {
    common: Common,
    config: SurgeConfig,
    /// Measure the baselines (not over HTTP).
    baselines: bool,
    /// Over HTTP: the contention retries are not seen.
    http: bool,
    /// Also measure a surge of booked exams with their waiting rooms on.
    booked: bool,
    /// Over HTTP: also measure the replicas in this process.
    vs_in_process: bool,
}

impl Surge {
    pub(crate) fn new(args: SurgeArgs) -> anyhow::Result<Self> {
        let http = args.common.http()?.is_some();
        Ok(Self {
            config: args.config(),
            baselines: !args.no_baselines && !http,
            http,
            booked: args.booked,
            vs_in_process: args.vs_in_process && http,
            common: args.common,
        })
    }

    /// Ours on a fresh deployment of `common`, with the exams booked or
    /// not.
    async fn ours(&self, common: &Common, run: usize, booked: bool) -> anyhow::Result<SurgeReport> {
        let config = SurgeConfig {
            booked,
            ..self.config.clone()
        };
        let progress = bar(format!(
            "run {run} {}{}",
            common.label(),
            if booked { " (booked)" } else { "" }
        ));
        let report = on_target(
            common,
            config.workers,
            config.breakdown,
            async |target, probe| surge_on(&target, probe, &config, &progress).await,
        )
        .await?;
        progress.finish_and_clear();
        Ok(report)
    }

    async fn baseline(&self, run: usize, naive_one: bool) -> anyhow::Result<BaselineReport> {
        let (config, name) = (
            &self.config,
            if naive_one { "naive" } else { "raw ceiling" },
        );
        let progress = bar(format!("run {run} {name}"));
        let report = on_deployment(&self.common, async |d| {
            if naive_one {
                naive(d, config, &progress).await
            } else {
                raw_ceiling(d, config, &progress).await
            }
        })
        .await?;
        progress.finish_and_clear();
        Ok(report)
    }
}

fn ours_json(ours: &SurgeReport) -> serde_json::Value {
    json!({
        "latency": summary_json(&ours.latency),
        "placed": ours.tally.placed, "noCapacity": ours.tally.no_capacity,
        "queued": ours.tally.queued,
        "errors": ours.tally.errors, "firstError": ours.tally.first_error,
        "contentionRetries": ours.tally.contention_retries,
        "contended": ours.tally.contended,
        "notStarted": ours.not_started,
        "overAllocations": ours.audit.over_allocations,
        "workerSideOver": ours.worker_side_over,
        "counterDrift": ours.audit.counter_drift,
        "cpu": cpu_json(&ours.cpu, ours.latency.count),
    })
}

fn baseline_json(b: &Option<BaselineReport>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => json!({
            "latency": summary_json(&b.latency),
            "reserved": b.tally.reserved,
            "refused": b.tally.refused,
            "errors": b.tally.errors,
            "overAllocations": b.audit.over_allocations,
            "overAllocatedWorkers": b.audit.over_allocated_workers,
            "cpu": cpu_json(&b.cpu, b.latency.count),
        }),
    }
}

impl Scenario for Surge {
    type Report = SurgeRun;

    const NAME: &'static str = "surge";

    fn common(&self) -> &Common {
        &self.common
    }

    async fn run(&self, run: usize) -> anyhow::Result<SurgeRun> {
        let ours = self.ours(&self.common, run, false).await?;
        let booked = if self.booked {
            Some(self.ours(&self.common, run, true).await?)
        } else {
            None
        };
        let in_process = if self.vs_in_process {
            Some(self.ours(&self.common.in_process(), run, false).await?)
        } else {
            None
        };
        let has_naive = matches!(self.common.store, Backend::Redis(_) | Backend::Postgres(_));
        let raw = if self.baselines {
            Some(self.baseline(run, false).await?)
        } else {
            None
        };
        let naive = if self.baselines && has_naive {
            Some(self.baseline(run, true).await?)
        } else {
            None
        };
        Ok(SurgeRun {
            ours,
            booked,
            in_process,
            raw,
            naive,
        })
    }

    fn progress_line(&self, run: usize, r: &SurgeRun) -> Option<String> {
        Some(format!(
            "run {run}: ours {} alloc/s, p99 {}, over-allocations {}",
            thousands(r.ours.latency.rate()),
            ms(r.ours.latency.p99),
            r.ours.audit.over_allocations
        ))
    }

    fn json(&self, r: &SurgeRun) -> serde_json::Value {
        let config = &self.config;
        json!({
            "workers": config.workers, "slots": config.slots,
            "students": config.students, "exams": config.exams,
            "concurrency": config.concurrency,
            "ours": ours_json(&r.ours),
            "booked": r.booked.as_ref().map(ours_json),
            "inProcess": r.in_process.as_ref().map(ours_json),
            "raw": baseline_json(&r.raw),
            "naive": baseline_json(&r.naive),
        })
    }

    fn title(&self) -> String {
        let config = &self.config;
        format!(
            "surge on {} — {} replicas, {} workers × {} slots, {} students in {} exams, concurrency {}",
            self.common.label(),
            self.common.replicas,
            config.workers,
            config.slots,
            config.students,
            config.exams,
            config.concurrency
        )
    }

    fn tables(&self, runs: &[SurgeRun]) -> Vec<Table> {
        let mut t = Table::new([
            "run",
            "system",
            "alloc/s",
            "p50",
            "p95",
            "p99",
            "max",
            "placed",
            "no capacity",
            "queued",
            "errors",
            "retries",
            "over-alloc",
            "ours ÷ it",
            "client µs/op",
            "server µs/op",
            "machine busy",
        ]);
        for (i, r) in runs.iter().enumerate() {
            let o = &r.ours;
            t.row(self.ours_row(i, "ours", o, None));
            if let Some(b) = &r.booked {
                let ratio = b.latency.rate() / o.latency.rate().max(1e-9);
                t.row(self.ours_row(i, "ours, exams booked (÷ ours)", b, Some(ratio)));
            }
            if let Some(p) = &r.in_process {
                let ratio = o.latency.rate() / p.latency.rate().max(1e-9);
                t.row(self.ours_row(i, "in process, same store", p, Some(ratio)));
            }
            for (name, b) in [("raw ceiling", &r.raw), ("naive", &r.naive)] {
                let Some(b) = b else { continue };
                let mut row = vec![(i + 1).to_string(), name.into()];
                row.extend(latency_cells(&b.latency));
                row.extend([
                    b.tally.reserved.to_string(),
                    b.tally.refused.to_string(),
                    "-".into(),
                    b.tally.errors.to_string(),
                    "-".into(),
                    b.audit.over_allocations.to_string(),
                    format!("{:.2}", o.latency.rate() / b.latency.rate().max(1e-9)),
                ]);
                row.extend(cpu_cells(&b.cpu, b.latency.count));
                t.row(row);
            }
        }
        vec![t, medians(runs)]
    }

    fn breakdowns<'a>(&self, runs: &'a [SurgeRun]) -> Vec<CallBreakdown<'a>> {
        let Some(last) = runs.last() else {
            return Vec::new();
        };
        [
            ("", Some(&last.ours)),
            (", exams booked", last.booked.as_ref()),
        ]
        .into_iter()
        .filter_map(|(what, report)| {
            let report = report?;
            Some((
                format!("store call (last run{what})"),
                report.breakdown.as_ref()?,
                report.latency.count,
            ))
        })
        .collect()
    }

    fn verdict(&self, runs: &[SurgeRun]) -> (bool, Option<String>) {
        let correct = runs.iter().all(|r| {
            [Some(&r.ours), r.booked.as_ref(), r.in_process.as_ref()]
                .into_iter()
                .flatten()
                .all(SurgeReport::is_correct)
        });
        let message = (!correct)
            .then(|| "FAILED: a run over-allocated, drifted or failed an allocation".to_owned());
        (correct, message)
    }
}

impl Surge {
    /// A row of ours, with a ratio of rates for its "ours ÷ it" cell.
    fn ours_row(&self, i: usize, system: &str, o: &SurgeReport, ratio: Option<f64>) -> Vec<String> {
        let mut row = vec![(i + 1).to_string(), system.into()];
        row.extend(latency_cells(&o.latency));
        row.extend([
            o.tally.placed.to_string(),
            o.tally.no_capacity.to_string(),
            o.tally.queued.to_string(),
            o.tally.errors.to_string(),
            if self.http {
                "-".to_owned()
            } else {
                o.tally.contention_retries.to_string()
            },
            (o.audit.over_allocations + o.worker_side_over).to_string(),
            ratio.map_or_else(String::new, |r| format!("{r:.2}")),
        ]);
        row.extend(cpu_cells(&o.cpu, o.latency.count));
        row
    }
}

/// The medians of the runs: ours, and against each baseline.
fn medians(runs: &[SurgeRun]) -> Table {
    let med = |f: &dyn Fn(&SurgeRun) -> Option<f64>| {
        median(&runs.iter().filter_map(f).collect::<Vec<_>>())
    };
    let mut m = Table::new(["median of runs", "value"]);
    let rate = med(&|r| Some(r.ours.latency.rate())).unwrap_or(0.0);
    m.row(["ours alloc/s".into(), thousands(rate)]);
    m.row([
        "ours p99".into(),
        format!(
            "{:.2} ms",
            med(&|r| Some(r.ours.latency.p99.as_secs_f64() * 1e3)).unwrap_or(0.0)
        ),
    ]);
    let ratio = |b: &Option<BaselineReport>, r: &SurgeRun| {
        b.as_ref().map(|b| r.ours.latency.rate() / b.latency.rate())
    };
    if let Some(raw) = med(&|r| r.raw.as_ref().map(|b| b.latency.rate())) {
        m.row(["raw ceiling ops/s".into(), thousands(raw)]);
        m.row([
            "ours ÷ raw ceiling".into(),
            format!("{:.2}", med(&|r| ratio(&r.raw, r)).unwrap_or(0.0)),
        ]);
    }
    if let Some(naive) = med(&|r| r.naive.as_ref().map(|b| b.latency.rate())) {
        m.row(["naive alloc/s".into(), thousands(naive)]);
        m.row([
            "ours ÷ naive".into(),
            format!("{:.2}", med(&|r| ratio(&r.naive, r)).unwrap_or(0.0)),
        ]);
        m.row([
            "naive over-allocations".into(),
            thousands(
                med(&|r| r.naive.as_ref().map(|b| b.audit.over_allocations as f64)).unwrap_or(0.0),
            ),
        ]);
    }
    if let Some(booked) = med(&|r| r.booked.as_ref().map(|b| b.latency.rate())) {
        m.row(["ours, exams booked alloc/s".into(), thousands(booked)]);
        m.row([
            "booked ÷ unbooked".into(),
            format!(
                "{:.2}",
                med(&|r| r
                    .booked
                    .as_ref()
                    .map(|b| b.latency.rate() / r.ours.latency.rate()))
                .unwrap_or(0.0)
            ),
        ]);
    }
    if let Some(in_process) = med(&|r| r.in_process.as_ref().map(|p| p.latency.rate())) {
        m.row(["in process alloc/s".into(), thousands(in_process)]);
        m.row([
            "HTTP ÷ in process".into(),
            format!(
                "{:.2}",
                med(&|r| r
                    .in_process
                    .as_ref()
                    .map(|p| r.ours.latency.rate() / p.latency.rate()))
                .unwrap_or(0.0)
            ),
        ]);
    }
    let over: u64 = runs
        .iter()
        .flat_map(|r| [Some(&r.ours), r.booked.as_ref(), r.in_process.as_ref()])
        .flatten()
        .map(|o| o.audit.over_allocations + o.worker_side_over)
        .sum();
    m.row(["ours over-allocations (all runs)".into(), over.to_string()]);
    m
}
