//! `seat`: the time from an exam's first click to its last seat, against
//! the physical bound of the same run (the slowest node's start plus the
//! students' reservations at the backend's raw ceiling, measured after).

use std::sync::Arc;

use anyhow::bail;
use serde_json::json;
use vdi_cluster_benches::baseline::{BaselineReport, raw_ceiling};
use vdi_cluster_benches::deploy::{Backend, Deployment};
use vdi_cluster_benches::http::{HttpSetup, StartLatency};
use vdi_cluster_benches::latency::{median, ms};
use vdi_cluster_benches::seat::{SeatConfig, SeatReport, physical_bound, seat};
use vdi_cluster_benches::surge::SurgeConfig;
use vdi_cluster_benches::table::{Table, thousands};
use vdi_cluster_benches::target::Target;

use crate::args::{Common, SeatArgs};
use crate::run::{Scenario, bar, on_http};

/// One run: the exam start and the raw ceiling measured beside it.
pub(crate) struct SeatRun {
    seat: SeatReport,
    raw: BaselineReport,
}

impl SeatRun {
    fn bound(&self, config: &SeatConfig, latency: &StartLatency) -> std::time::Duration {
        physical_bound(config.students, latency.max, self.raw.latency.rate())
    }
}

pub(crate) struct Seat {
    common: Common,
    config: SeatConfig,
    setup: HttpSetup,
}

impl Seat {
    pub(crate) fn new(args: SeatArgs) -> anyhow::Result<Self> {
        let Some(mut setup) = args.common.http()? else {
            bail!("seat starts servers and worker nodes: use --store http://127.0.0.1:PORT");
        };
        setup.start_latency = args.start_latency();
        Ok(Self {
            config: args.config(),
            setup,
            common: args.common,
        })
    }

    /// The raw reserve ceiling of the servers' backend, for the same
    /// fleet and students.
    async fn raw(&self, run: usize) -> anyhow::Result<BaselineReport> {
        let config = SurgeConfig {
            workers: self.config.workers,
            slots: self.config.slots,
            students: self.config.students,
            pg_pool: self.common.pg_pool,
            ..SurgeConfig::default()
        };
        let store = self.common.server_store();
        let deployment = Deployment::open(store, 1, self.common.pg_pool).await?;
        let progress = bar(format!("run {run} raw ceiling"));
        let report = raw_ceiling(&deployment, &config, &progress).await;
        progress.finish_and_clear();
        deployment.close().await;
        report
    }
}

impl Scenario for Seat {
    type Report = SeatRun;

    const NAME: &'static str = "seat";

    fn common(&self) -> &Common {
        &self.common
    }

    async fn run(&self, run: usize) -> anyhow::Result<SeatRun> {
        let config = &self.config;
        let progress = bar(format!("run {run} seat"));
        let seated = on_http(&self.setup, config.workers, async |cluster| {
            seat(&(Arc::clone(cluster) as Arc<dyn Target>), config, &progress).await
        })
        .await?;
        progress.finish_and_clear();
        Ok(SeatRun {
            seat: seated,
            raw: self.raw(run).await?,
        })
    }

    fn progress_line(&self, run: usize, r: &SeatRun) -> Option<String> {
        Some(format!(
            "run {run}: {} seated, last seat {} after the first click (bound {})",
            r.seat.seated,
            ms(r.seat.first_click_to_last_seat),
            ms(r.bound(&self.config, &self.setup.start_latency)),
        ))
    }

    fn json(&self, r: &SeatRun) -> serde_json::Value {
        let (c, s) = (&self.config, &r.seat);
        let bound = r.bound(c, &self.setup.start_latency);
        json!({
            "workers": c.workers, "slots": c.slots, "students": c.students,
            "windowSec": c.window.as_secs_f64(),
            "startMinMs": self.setup.start_latency.min.as_secs_f64() * 1e3,
            "startMaxMs": self.setup.start_latency.max.as_secs_f64() * 1e3,
            "seated": s.seated, "notSeated": s.not_seated,
            "firstClickToLastSeatMs": s.first_click_to_last_seat.as_secs_f64() * 1e3,
            "clickToSeatP50Ms": s.click_to_seat.quantile(0.5).as_secs_f64() * 1e3,
            "clickToSeatP99Ms": s.click_to_seat.quantile(0.99).as_secs_f64() * 1e3,
            "requests": s.requests, "errors": s.errors, "firstError": s.first_error,
            "rawCeilingPerSec": r.raw.latency.rate(),
            "physicalBoundMs": bound.as_secs_f64() * 1e3,
            "overAllocations": s.recount.audit.over_allocations,
            "workerSideOver": s.recount.worker_side_over,
        })
    }

    fn title(&self) -> String {
        let (c, l) = (&self.config, &self.setup.start_latency);
        format!(
            "seat on {} — {} replicas, {} workers × {} slots (starts {}–{}), {} students clicking within {} s",
            self.common.label(),
            if *self.common.server_store() == Backend::Memory {
                1
            } else {
                self.setup.replicas
            },
            c.workers,
            c.slots,
            ms(l.min),
            ms(l.max),
            c.students,
            c.window.as_secs()
        )
    }

    fn tables(&self, runs: &[SeatRun]) -> Vec<Table> {
        let mut t = Table::new([
            "run",
            "seated",
            "not seated",
            "first click → last seat",
            "click → seat p50",
            "click → seat p99",
            "requests",
            "errors",
            "over-alloc",
            "raw ceiling/s",
            "physical bound",
            "÷ bound",
        ]);
        for (i, r) in runs.iter().enumerate() {
            let s = &r.seat;
            let bound = r.bound(&self.config, &self.setup.start_latency);
            t.row([
                (i + 1).to_string(),
                s.seated.to_string(),
                s.not_seated.to_string(),
                ms(s.first_click_to_last_seat),
                ms(s.click_to_seat.quantile(0.5)),
                ms(s.click_to_seat.quantile(0.99)),
                s.requests.to_string(),
                s.errors.to_string(),
                (s.recount.audit.over_allocations + s.recount.worker_side_over).to_string(),
                thousands(r.raw.latency.rate()),
                ms(bound),
                format!(
                    "{:.2}",
                    s.first_click_to_last_seat.as_secs_f64() / bound.as_secs_f64().max(1e-9)
                ),
            ]);
        }
        let med = |f: &dyn Fn(&SeatRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let mut m = Table::new(["median of runs", "value"]);
        let last = med(&|r| r.seat.first_click_to_last_seat.as_secs_f64()).unwrap_or(0.0);
        let bound = med(&|r| {
            r.bound(&self.config, &self.setup.start_latency)
                .as_secs_f64()
        })
        .unwrap_or(0.0);
        m.row(["first click → last seat".into(), format!("{last:.2} s")]);
        m.row(["physical bound".into(), format!("{bound:.2} s")]);
        m.row(["÷ bound".into(), format!("{:.2}", last / bound.max(1e-9))]);
        let clicks = (self.config.window + self.setup.start_latency.max).as_secs_f64();
        m.row([
            "click window + slowest start".into(),
            format!("{clicks:.2} s"),
        ]);
        m.row([
            "÷ (click window + slowest start)".into(),
            format!("{:.2}", last / clicks.max(1e-9)),
        ]);
        vec![t, m]
    }

    fn verdict(&self, runs: &[SeatRun]) -> (bool, Option<String>) {
        let correct = runs.iter().all(|r| r.seat.is_correct());
        let message = (!correct)
            .then(|| "FAILED: a student was not seated, or a worker was over-allocated".to_owned());
        (correct, message)
    }
}
