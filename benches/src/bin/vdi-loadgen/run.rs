//! The one run-and-report path every scenario plugs into: run `--runs`
//! times on fresh namespaces, print each run's JSON (`--json`), then the
//! title, the tables, the store-call breakdowns and the verdict.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use vdi_cluster_benches::cpu::{CpuUse, Probe};
use vdi_cluster_benches::deploy::Deployment;
use vdi_cluster_benches::http::{HttpCluster, HttpSetup};
use vdi_cluster_benches::instrument::MethodStats;
use vdi_cluster_benches::latency::{Summary, ms};
use vdi_cluster_benches::table::{Table, thousands};
use vdi_cluster_benches::target::{InProcess, Target};

use crate::args::Common;

/// A store-call breakdown to print: its title, the calls, and the
/// operations they are divided by.
pub(crate) type CallBreakdown<'a> = (String, &'a BTreeMap<&'static str, MethodStats>, u64);

/// A scenario of the load generator.
pub(crate) trait Scenario {
    /// What one run measured.
    type Report;

    /// `surge`, `heartbeat` or `steady`.
    const NAME: &'static str;

    /// The flags every scenario shares.
    fn common(&self) -> &Common;

    /// Measures run number `run` (from 1), on fresh namespaces.
    async fn run(&self, run: usize) -> anyhow::Result<Self::Report>;

    /// A line for standard error once a run is measured.
    fn progress_line(&self, _run: usize, _report: &Self::Report) -> Option<String> {
        None
    }

    /// The run's figures for `--json` (the scenario, store, run and
    /// replicas are added).
    fn json(&self, report: &Self::Report) -> serde_json::Value;

    /// The line above the tables.
    fn title(&self) -> String;

    /// Every run, then the medians.
    fn tables(&self, runs: &[Self::Report]) -> Vec<Table>;

    /// Store-call breakdowns, when counted.
    fn breakdowns<'a>(&self, _runs: &'a [Self::Report]) -> Vec<CallBreakdown<'a>> {
        Vec::new()
    }

    /// Whether every run was correct, and what to tell standard error.
    fn verdict(&self, runs: &[Self::Report]) -> (bool, Option<String>);
}

/// Runs `scenario` `--runs` times and reports; `Ok(false)` when a run was
/// not correct.
pub(crate) async fn run_and_report<S: Scenario>(scenario: S) -> anyhow::Result<bool> {
    let common = scenario.common();
    let mut runs = Vec::new();
    for run in 1..=common.runs.max(1) {
        let report = scenario.run(run).await?;
        if let Some(line) = scenario.progress_line(run, &report) {
            eprintln!("{line}");
        }
        if common.json {
            let mut figures = scenario.json(&report);
            if let Some(map) = figures.as_object_mut() {
                map.insert("scenario".into(), S::NAME.into());
                map.insert("store".into(), common.label().into());
                map.insert("run".into(), run.into());
                map.insert("replicas".into(), common.replicas.into());
            }
            println!("{figures}");
        }
        runs.push(report);
    }
    println!("\n{}\n", scenario.title());
    for table in scenario.tables(&runs) {
        println!("{}", table.render());
    }
    for (title, calls, ops) in scenario.breakdowns(&runs) {
        print_breakdown(&title, calls, ops);
    }
    let (correct, message) = scenario.verdict(&runs);
    if let Some(message) = message {
        eprintln!("{message}");
    }
    Ok(correct)
}

/// Runs `f` on a fresh deployment of `--store`, and removes the deployment
/// afterwards, also on Ctrl-C.
pub(crate) async fn on_deployment<T>(
    common: &Common,
    f: impl AsyncFnOnce(&Deployment) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let deployment = Deployment::open(&common.store, common.replicas, common.pg_pool)
        .await
        .with_context(|| format!("open {}", common.store))?;
    let result = tokio::select! {
        r = f(&deployment) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    deployment.close().await;
    result
}

/// Runs `f` on freshly started servers and `workers` worker nodes, and
/// stops them afterwards, also on Ctrl-C.
pub(crate) async fn on_http<T>(
    setup: &HttpSetup,
    workers: usize,
    f: impl AsyncFnOnce(&Arc<HttpCluster>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut cluster = Arc::new(HttpCluster::start(setup, workers).await?);
    let result = tokio::select! {
        r = f(&cluster) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Aborted tasks of an interrupted phase let go of it shortly.
    for _ in 0..100 {
        match Arc::try_unwrap(cluster) {
            Ok(c) => {
                c.stop().await;
                return result;
            }
            Err(c) => {
                cluster = c;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    eprintln!(
        "warning: the servers and nodes of this run are still in use after 2 s; \
         they are not stopped and their namespace is left behind"
    );
    result
}

/// Runs `f` on a fresh target — replicas in this process over a fresh
/// deployment of `--store` (counting store calls with `count_calls`), or
/// servers over `--server-store` with `workers` worker nodes for an
/// `http://` store — with the CPU probe of every process involved, and
/// removes it afterwards, also on Ctrl-C.
pub(crate) async fn on_target<T>(
    common: &Common,
    workers: usize,
    count_calls: bool,
    f: impl AsyncFnOnce(Arc<dyn Target>, Probe) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match common.http()? {
        Some(setup) => {
            on_http(&setup, workers, async move |c| {
                let probe = c.cpu_probe().await;
                f(Arc::clone(c) as Arc<dyn Target>, probe).await
            })
            .await
        }
        None => {
            on_deployment(common, async move |d| {
                let target = Arc::new(InProcess::new(d, common.tuning(), count_calls));
                f(target, d.cpu_probe().await).await
            })
            .await
        }
    }
}

/// A progress bar labelled `label`.
pub(crate) fn bar(label: String) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:40}] {pos}/{len} {per_sec} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label);
    bar
}

fn print_breakdown(title: &str, calls: &BTreeMap<&'static str, MethodStats>, ops: u64) {
    let ops = ops.max(1) as f64;
    let mut b = Table::new([title, "calls", "per operation", "mean"]);
    for (method, stats) in calls {
        b.row([
            (*method).to_owned(),
            stats.calls.to_string(),
            format!("{:.3}", stats.calls as f64 / ops),
            ms(stats.total / u32::try_from(stats.calls.max(1)).unwrap_or(u32::MAX)),
        ]);
    }
    println!("{}", b.render());
}

/// Rate, p50, p95, p99 and max.
pub(crate) fn latency_cells(s: &Summary) -> [String; 5] {
    [
        thousands(s.rate()),
        ms(s.p50),
        ms(s.p95),
        ms(s.p99),
        ms(s.max),
    ]
}

/// CPU per operation: load generator (with the in-process control
/// plane), backend server, and — over HTTP — the control-plane processes
/// added to the first figure after a `+`; then how busy the machine was.
pub(crate) fn cpu_cells(cpu: &CpuUse, ops: u64) -> [String; 3] {
    let [client, server, control] = cpu.per_op(ops);
    let us = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let client = match control {
        Some(c) => format!("{} + {c:.0}", us(client)),
        None => us(client),
    };
    [
        client,
        us(server),
        cpu.machine_busy
            .map_or("-".to_owned(), |b| format!("{:.0} %", b * 100.0)),
    ]
}

pub(crate) fn cpu_json(cpu: &CpuUse, ops: u64) -> serde_json::Value {
    let [client, server, control] = cpu.per_op(ops);
    json!({
        "clientUsPerOp": client, "serverUsPerOp": server, "controlPlaneUsPerOp": control,
        "machineBusy": cpu.machine_busy,
    })
}

pub(crate) fn summary_json(s: &Summary) -> serde_json::Value {
    json!({
        "count": s.count,
        "seconds": s.elapsed.as_secs_f64(),
        "perSecond": s.rate(),
        "p50Ms": s.p50.as_secs_f64() * 1e3,
        "p95Ms": s.p95.as_secs_f64() * 1e3,
        "p99Ms": s.p99.as_secs_f64() * 1e3,
        "maxMs": s.max.as_secs_f64() * 1e3,
    })
}
