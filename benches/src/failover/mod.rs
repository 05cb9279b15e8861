//! A store failover during an exam-start surge: the store's primary dies a
//! third of the way into thousands of clicks, and the exam goes on.
//!
//! * **The store** ([`store`]): a deployment private to the run, from the
//!   store crates' `testkit` — Redis with Sentinel (a primary, a replica,
//!   three sentinels; `serve` uses `redis+sentinel://…`), or a PostgreSQL
//!   primary with a streaming hot standby (`serve` uses the host list
//!   `standby,primary`). `--sync`: `serve --redis-wait-replicas 1`, or a
//!   synchronous standby.
//! * **The cluster**: the game day's — `serve` replicas and `worker`
//!   agents with the simulated provisioner, real processes of the
//!   `vdi-cluster` binary ([`crate::gameday::cluster`]).
//! * **The surge** ([`clicks`]): students click within a window through
//!   the replicas in turn and click again after a failed answer until
//!   they are answered with a desktop. A third of the way in, the primary
//!   is SIGKILLed; the sentinels promote the replica (and the old primary
//!   comes back as its replica), or the run promotes the standby.
//! * **The figures** ([`report`]), once every student was answered: the
//!   window during which clicks failed; every student answered still at
//!   the desktop it was answered with, or placed again; the lost writes
//!   the fleet's heartbeats repaired (adoptions); no `serve` restarted
//!   and every replica naming the new primary; 0 over-allocation; no slot
//!   held by nobody after one reconcile pass.

mod clicks;
mod report;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::task::JoinSet;

pub use self::report::{FailoverReport, Holdings};
pub use self::store::Engine;

use self::clicks::{Surge, user};
use self::store::Deployment;
use crate::gameday::Timings;
use crate::gameday::checks::{self, Answer, Check, fleet_view, slots_check};
use crate::gameday::cluster::{Cluster, ClusterSpec};
use crate::gameday::monitor::{Monitor, POLL_EVERY};
use crate::gameday::procs::LogDir;

/// The exam the students click for.
const EXAM: &str = "failover";

/// Sizes and timings of a run.
#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// The `vdi-cluster` binary the replicas and agents run.
    pub server_bin: std::path::PathBuf,
    /// Which engine fails over.
    pub engine: Engine,
    /// Synchronous replication.
    pub sync: bool,
    /// Redis: the old primary comes back as the new one's replica as soon
    /// as the sentinels have failed over (always with `sync`, where a step
    /// needs one replica).
    pub old_primary_back: bool,
    /// `serve` replicas.
    pub replicas: usize,
    /// Worker agents (processes).
    pub agents: usize,
    /// Slots of each agent.
    pub slots: u32,
    /// Students; their first clicks are spread over `window`.
    pub students: usize,
    /// The surge's window.
    pub window: Duration,
    /// The primary is killed this share of the way into the window.
    pub kill_at: f64,
    /// PostgreSQL: the standby is promoted this long after the kill.
    pub promote_after: Duration,
    /// The agents' simulated start of a session, ms.
    pub start_latency_ms: u64,
    /// The control plane's timings.
    pub timings: Timings,
    /// Bound on the whole run.
    pub time_limit: Duration,
}

impl FailoverConfig {
    /// Exam scale: 3 replicas, 4 agents × 600 slots, 2,000 students
    /// within 10 s, the primary killed at 3.3 s.
    pub fn full(server_bin: std::path::PathBuf, engine: Engine, sync: bool) -> Self {
        Self {
            server_bin,
            engine,
            sync,
            old_primary_back: sync,
            replicas: 3,
            agents: 4,
            slots: 600,
            students: 2_000,
            window: Duration::from_secs(10),
            kill_at: 1.0 / 3.0,
            promote_after: Duration::ZERO,
            start_latency_ms: 50,
            timings: Timings::default(),
            time_limit: Duration::from_secs(600),
        }
    }

    /// The short run of CI: 2 replicas, 3 agents × 40 slots, 90 students
    /// within 3 s.
    pub fn short(server_bin: std::path::PathBuf, engine: Engine, sync: bool) -> Self {
        Self {
            replicas: 2,
            agents: 3,
            slots: 40,
            students: 90,
            window: Duration::from_secs(3),
            time_limit: Duration::from_secs(300),
            ..Self::full(server_bin, engine, sync)
        }
    }
}

/// Runs one failover during a surge and reports it. Every process is
/// killed and every directory removed afterwards, also when the run fails,
/// is interrupted (Ctrl-C) or exceeds `time_limit`; an `Err` is a run that
/// could not be carried out, a report with failed checks one that was.
pub async fn failover(config: &FailoverConfig) -> anyhow::Result<FailoverReport> {
    if config.students as u64 > config.agents as u64 * u64::from(config.slots) {
        bail!("more students than slots: every student must be placed");
    }
    let mut logs = LogDir::new("failover")?;
    let mut deployment = Deployment::start(config.engine, config.sync).await?;
    let run = run_on(config, &mut deployment, &logs.path);
    let result = tokio::select! {
        r = tokio::time::timeout(config.time_limit, run) => match r {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("the run did not finish within {:?}", config.time_limit)),
        },
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match result {
        Ok(mut report) => {
            if !report.passed() {
                logs.remove = false;
                report.logs = Some(logs.path.clone());
            }
            Ok(report)
        }
        Err(e) => {
            logs.remove = false;
            Err(e.context(format!(
                "the processes' logs are in {}",
                logs.path.display()
            )))
        }
    }
}

async fn run_on(
    config: &FailoverConfig,
    deployment: &mut Deployment,
    logs: &std::path::Path,
) -> anyhow::Result<FailoverReport> {
    let spec = ClusterSpec {
        server_bin: config.server_bin.clone(),
        store: deployment.store_args(),
        replicas: config.replicas,
        agents: config.agents,
        slots: config.slots,
        start_latency_ms: config.start_latency_ms,
        timings: config.timings,
        serve_flags: deployment.serve_flags(config.sync),
    };
    let mut cluster = Cluster::start(&spec, logs).await?;
    let (first_primary, promoted) = deployment.primaries();
    let named = primaries_named(&cluster).await;
    if named
        .iter()
        .any(|p| p.as_deref() != Some(first_primary.as_str()))
    {
        bail!("the replicas name {named:?}, not the primary {first_primary}");
    }
    let monitor = Arc::new(Monitor::new(
        cluster
            .agents
            .iter()
            .map(|a| (a.code.clone(), a.base.clone()))
            .collect(),
        cluster.cluster_token.clone(),
    )?);
    let monitoring = tokio::spawn(Arc::clone(&monitor).run());
    tokio::time::sleep(POLL_EVERY * 2).await;

    let n = config.students.max(1);
    let surge = Arc::new(Surge::new(
        EXAM,
        cluster.replicas.iter().map(|r| r.base.clone()).collect(),
        cluster.service_jwt.clone(),
        n,
    )?);
    let first_click = Instant::now() + Duration::from_millis(200);
    let mut students = JoinSet::new();
    for i in 0..n {
        let at = first_click + config.window.mul_f64(i as f64 / n as f64);
        students.spawn(Arc::clone(&surge).student(i, at));
    }
    let kill_at = first_click + config.window.mul_f64(config.kill_at.clamp(0.0, 1.0));
    tokio::time::sleep_until(kill_at.into()).await;
    let killed = Instant::now();
    deployment.kill_primary();
    let mut failover_note = deployment.fail_over(config.promote_after).await;
    if config.old_primary_back && config.engine == Engine::Redis {
        // The old primary comes back as the new one's replica as soon as
        // the sentinels have failed over, as a supervisor restarts a
        // crashed server (a step that waits for one replica needs one).
        deployment.restart_old_primary().await;
        failover_note.push_str(&format!(
            "; the old primary, started again as its replica, was synchronised {:.1} s after the kill",
            killed.elapsed().as_secs_f64()
        ));
    }
    while students.join_next().await.is_some() {}
    let surge_over = killed.elapsed();

    // Every replica, still the process it was, names the new primary.
    let replicas_named = until_named(&cluster, &promoted, Duration::from_secs(30)).await;
    let mut restarted = Vec::new();
    for r in &mut cluster.replicas {
        if let Err(e) = r.proc.check_alive() {
            restarted.push(format!("{}: {e:#}", r.proc.name));
        }
    }

    let clicks = std::mem::take(&mut *surge.clicks.lock().expect("clicks lock"));
    let holdings = holdings(&cluster, &clicks.answered).await;
    let adopted_by_heartbeats = adoptions(&cluster).await;
    let (status, pass) = cluster
        .admin_post("/api/vdi/workers/reconcile", &Value::Null)
        .await?;
    if status != 200 {
        bail!("the reconcile pass: {status} {pass}");
    }
    let slots = after_one_pass(&cluster).await;
    let store = deployment
        .open()
        .await
        .context("the store, for the recount")?;
    let over = checks::over_allocation(&monitor, store.as_ref()).await;
    monitoring.abort();

    Ok(FailoverReport {
        engine: config.engine,
        sync: config.sync,
        store_detail: deployment.describe(config.sync),
        config: config.clone(),
        kill_at_ms: killed.duration_since(first_click).as_millis() as u64,
        failover_note,
        failed: clicks
            .failed
            .iter()
            .map(|t| t.saturating_duration_since(killed).as_millis() as i64)
            .collect(),
        failed_before_kill: clicks.failed.iter().filter(|&&t| t < killed).count() as u64,
        answered: clicks.answered.iter().filter(|a| a.is_some()).count() as u64,
        last_answer_ms: clicks
            .answered
            .iter()
            .flatten()
            .map(|(_, at)| at.saturating_duration_since(killed).as_millis() as u64)
            .max(),
        surge_over_ms: surge_over.as_millis() as u64,
        requests: serde_json::json!({
            "sent": clicks.requests, "refused503": clicks.refused,
            "transportErrors": clicks.transport_errors, "otherFailures": clicks.other_failures,
            "unexpected": clicks.unexpected, "firstUnexpected": clicks.first_unexpected,
        }),
        first_primary,
        promoted,
        replicas_named,
        restarted,
        holdings,
        adopted_by_heartbeats,
        pass,
        checks: vec![slots, over],
        logs: None,
    })
}

/// The primary each replica's `/readyz` names (`None`: no answer).
async fn primaries_named(cluster: &Cluster) -> Vec<Option<String>> {
    let mut named = Vec::new();
    for r in &cluster.replicas {
        let answer = cluster.probe.get(format!("{}/readyz", r.base)).send().await;
        let primary = match answer {
            Ok(a) if a.status().is_success() => a
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["primary"].as_str().map(str::to_owned)),
            _ => None,
        };
        named.push(primary);
    }
    named
}

/// What each replica's `/readyz` names once all name `primary`, or after
/// `bound`.
async fn until_named(cluster: &Cluster, primary: &str, bound: Duration) -> Vec<String> {
    let deadline = Instant::now() + bound;
    loop {
        let named = primaries_named(cluster).await;
        if named.iter().all(|p| p.as_deref() == Some(primary)) || Instant::now() > deadline {
            return named.into_iter().map(Option::unwrap_or_default).collect();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where every student answered is now, as the control plane says; read
/// again (up to 30 s) while a student holds nothing, since a lost write
/// comes back with the worker's next heartbeat after the adoption grace.
async fn holdings(cluster: &Cluster, answered: &[Option<(String, Instant)>]) -> Holdings {
    let from = Instant::now();
    let deadline = from + Duration::from_secs(30);
    loop {
        let mut h = Holdings::default();
        for (i, a) in answered.iter().enumerate() {
            let Some((worker, _)) = a else { continue };
            match checks::answer_for(cluster, EXAM, &user(i)).await {
                Answer::Seated { worker: now, .. } if now == *worker => h.same += 1,
                Answer::Seated { .. } => h.re_placed += 1,
                _ => {
                    h.nothing += 1;
                    if h.examples.len() < 3 {
                        h.examples.push(user(i));
                    }
                }
            }
        }
        if h.nothing == 0 || Instant::now() > deadline {
            h.read_for_ms = from.elapsed().as_millis() as u64;
            return h;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sessions and reservations adopted from the workers' heartbeats, summed
/// over the replicas' `vdi_events_total` (each replica counts the events
/// it emitted).
async fn adoptions(cluster: &Cluster) -> (u64, u64) {
    let (mut sessions, mut reservations) = (0, 0);
    for r in &cluster.replicas {
        let Ok(answer) = cluster
            .client
            .get(format!("{}/metrics", r.base))
            .bearer_auth(&cluster.admin_jwt)
            .send()
            .await
        else {
            continue;
        };
        let text = answer.text().await.unwrap_or_default();
        sessions += counter(&text, "vdi_events_total{type=\"sessionAdopted\"}");
        reservations += counter(&text, "vdi_events_total{type=\"reservationAdopted\"}");
    }
    (sessions, reservations)
}

/// The value of the series `series` in an OpenMetrics text (0 if absent).
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The slots' check right after the pass; read again (no other pass asked
/// for) a few times if a heartbeat in flight makes a reading disagree.
async fn after_one_pass(cluster: &Cluster) -> Check {
    let mut last = None;
    for _ in 0..5 {
        match fleet_view(cluster).await {
            Ok(view) => {
                let check = slots_check(&view);
                if check.passed {
                    return check;
                }
                last = Some(check);
            }
            Err(e) => {
                last = Some(Check {
                    name: "no slot held by nobody (each worker: its sessions = the records)",
                    passed: false,
                    detail: format!("could not read the cluster: {e:#}"),
                });
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    last.expect("read at least once")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_counter_series() {
        let text = "# TYPE vdi_events counter\n\
                    vdi_events_total{type=\"sessionAdopted\"} 12\n\
                    vdi_events_total{type=\"sessionLost\"} 3\n";
        assert_eq!(
            counter(text, "vdi_events_total{type=\"sessionAdopted\"}"),
            12
        );
        assert_eq!(
            counter(text, "vdi_events_total{type=\"reservationAdopted\"}"),
            0
        );
    }

    #[test]
    fn the_short_run_is_smaller_and_everybody_fits() {
        for c in [
            FailoverConfig::full("x".into(), Engine::Redis, false),
            FailoverConfig::short("x".into(), Engine::Postgres, true),
        ] {
            assert!(c.students as u64 <= c.agents as u64 * u64::from(c.slots));
        }
        let short = FailoverConfig::short("x".into(), Engine::Redis, false);
        assert!(short.students < FailoverConfig::full("x".into(), Engine::Redis, false).students);
    }
}
