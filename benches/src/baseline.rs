//! Baselines measured in the same run as ours:
//!
//! * **raw ceiling** — the backend's atomic compare-and-reserve issued
//!   directly, with minimal client code, at the same concurrency and over
//!   the same number of connections: on Redis a bare `EVALSHA` loop of the
//!   backend's own `reserve.lua`; on PostgreSQL the bare
//!   `SELECT … FROM vdi.reserve(…)` statement; in memory the store's
//!   `reserve` called without the service around it. Each student goes to
//!   worker `i mod W`: no snapshot, no ranking, no worker call, no confirm.
//! * **naive** — what the exam platform's runbook implies a team writes
//!   first: read every worker, pick the highest `availableSessions`, then
//!   write the dispatch and increment the worker's counter with separate
//!   commands, on the same
//!   keys (Redis) or tables (PostgreSQL). Fast to write, and it
//!   over-allocates: the recount afterwards says by how much.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::ProgressBar;
use sqlx::postgres::{PgPool, PgPoolOptions};
use vdi_cluster_core::Clock;
use vdi_cluster_core::store::{Reservation, ReserveRequest};
use vdi_cluster_core::{Dispatch, SessionKey, Store, SystemClock, WorkerId};
use vdi_cluster_redis::redis;

use crate::alloc::students;
use crate::audit::{Audit, audit};
use crate::cpu::{self, CpuSample, CpuUse, Probe};
use crate::deploy::{Backend, Deployment, redis_connection};
use crate::driver::{Driven, Tally, count_failure, drive, merge_failure, restart};
use crate::fleet::register_fleet;
use crate::latency::Summary;
use crate::surge::SurgeConfig;

/// Outcomes of baseline reservations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReserveTally {
    /// Slots taken.
    pub reserved: u64,
    /// Refused (full, not accepting, or no worker with a free slot).
    pub refused: u64,
    /// Errors.
    pub errors: u64,
    /// The first error.
    pub first_error: Option<String>,
}

/// One baseline reservation's result.
#[derive(Debug)]
pub enum ReserveOutcome {
    /// A slot was taken.
    Reserved,
    /// Refused.
    Refused,
    /// Failed.
    Failed(String),
}

impl Tally for ReserveTally {
    type Outcome = ReserveOutcome;

    fn add(&mut self, outcome: ReserveOutcome) {
        match outcome {
            ReserveOutcome::Reserved => self.reserved += 1,
            ReserveOutcome::Refused => self.refused += 1,
            ReserveOutcome::Failed(e) => count_failure(&mut self.errors, &mut self.first_error, e),
        }
    }

    fn merge(&mut self, other: Self) {
        self.reserved += other.reserved;
        self.refused += other.refused;
        merge_failure(
            (&mut self.errors, &mut self.first_error),
            (other.errors, other.first_error),
        );
    }
}

/// What a baseline measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineReport {
    /// Throughput and latency of every attempt.
    pub latency: Summary,
    /// Outcomes.
    pub tally: ReserveTally,
    /// The recount afterwards.
    pub audit: Audit,
    /// CPU used during the measured phase.
    pub cpu: CpuUse,
}

fn failed(e: impl std::fmt::Display) -> ReserveOutcome {
    ReserveOutcome::Failed(e.to_string())
}

/// A reservation of student `i` on worker `worker`, as the service would
/// write it.
fn reservation(key: SessionKey, worker: &WorkerId) -> Dispatch {
    Dispatch::reserve(key, worker.clone(), SystemClock.now(), None, None)
}

/// What both baselines start from, on a fresh deployment.
struct Start {
    /// The fleet, registered with the deployment's first store (so worker
    /// records, slots and counters are laid out exactly as the backend
    /// does).
    workers: Arc<Vec<WorkerId>>,
    /// The students.
    keys: Arc<Vec<SessionKey>>,
    /// CPU accounting.
    probe: Probe,
    /// When to stop starting reservations.
    deadline: Instant,
    /// CPU at the start of the measured phase, once sampled.
    before: Option<CpuSample>,
}

async fn start(deployment: &Deployment, config: &SurgeConfig, progress: &ProgressBar) -> Start {
    let store: &dyn Store = deployment.stores()[0].as_ref();
    let workers = Arc::new(register_fleet(store, config.workers, config.slots).await);
    restart(progress, config.students);
    Start {
        workers,
        keys: students(config.students, config.exams),
        probe: deployment.cpu_probe().await,
        deadline: Instant::now() + config.time_limit,
        before: None,
    }
}

impl Start {
    /// The measured phase starts: samples the CPU.
    async fn begin(&mut self) {
        self.before = Some(self.probe.sample().await);
    }

    /// One multiplexed connection per replica, and the key prefix.
    async fn redis(
        &self,
        deployment: &Deployment,
    ) -> anyhow::Result<(Vec<redis::aio::MultiplexedConnection>, String)> {
        let (url, prefix) = deployment.redis_namespace().context("Redis namespace")?;
        let mut conns = Vec::new();
        for _ in 0..deployment.stores().len() {
            conns.push(redis_connection(url).await?);
        }
        Ok((conns, prefix.to_owned()))
    }

    /// Runs `op(pool, i)` for every student over one PostgreSQL pool per
    /// replica (`what` names them in errors), closed afterwards; the phase
    /// begins once they are open.
    async fn on_pools<F, Fut>(
        &mut self,
        deployment: &Deployment,
        config: &SurgeConfig,
        what: &'static str,
        progress: &ProgressBar,
        op: F,
    ) -> anyhow::Result<Driven<ReserveTally>>
    where
        F: Fn(PgPool, usize) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ReserveOutcome> + Send + 'static,
    {
        let pools = Arc::new(replica_pools(deployment, config.pg_pool, what).await?);
        self.begin().await;
        let p = Arc::clone(&pools);
        let (c, n) = (config.concurrency, config.students);
        let driven = drive(c, n, self.deadline, progress, move |i| {
            op(p[i % p.len()].clone(), i)
        })
        .await;
        for p in pools.iter() {
            p.close().await;
        }
        Ok(driven)
    }

    /// The report: CPU of the phase, and the recount.
    async fn finish(
        mut self,
        deployment: &Deployment,
        driven: Driven<ReserveTally>,
    ) -> anyhow::Result<BaselineReport> {
        let after = self.probe.sample().await;
        let cpu = cpu::between(self.before.as_ref().unwrap_or(&after), &after);
        let audit = audit(deployment.stores()[0].as_ref()).await?;
        Ok(BaselineReport {
            latency: driven.latencies.summary(driven.elapsed),
            tally: driven.tally,
            audit,
            cpu,
        })
    }
}

/// The raw ceiling of `deployment`'s backend (see the module docs), on a
/// fresh deployment.
pub async fn raw_ceiling(
    deployment: &Deployment,
    config: &SurgeConfig,
    progress: &ProgressBar,
) -> anyhow::Result<BaselineReport> {
    let mut start = start(deployment, config, progress).await;
    let (workers, keys) = (Arc::clone(&start.workers), Arc::clone(&start.keys));
    let (c, n, deadline) = (config.concurrency, config.students, start.deadline);
    let driven = match deployment.backend() {
        Backend::Memory => {
            start.begin().await;
            let store = Arc::clone(&deployment.stores()[0]);
            drive::<ReserveTally, _, _>(c, n, deadline, progress, move |i| {
                let store = Arc::clone(&store);
                let request = ReserveRequest {
                    dispatch: reservation(keys[i].clone(), &workers[i % workers.len()]),
                    supersede: None,
                    permit: None,
                };
                async move {
                    match store.reserve(&request).await {
                        Ok(Reservation::Reserved { .. }) => ReserveOutcome::Reserved,
                        Ok(_) => ReserveOutcome::Refused,
                        Err(e) => failed(e),
                    }
                }
            })
            .await
        }
        Backend::Redis(_) => {
            let (mut conns, prefix) = start.redis(deployment).await?;
            // The backend's own compare-and-reserve script, run bare.
            let script = vdi_cluster_redis::reserve_script();
            // Load it once, so the loop is EVALSHA only.
            let _: String = script
                .prepare_invoke()
                .load_async(&mut conns[0])
                .await
                .context("SCRIPT LOAD")?;
            let (conns, script) = (Arc::new(conns), Arc::new(script));
            start.begin().await;
            drive::<ReserveTally, _, _>(c, n, deadline, progress, move |i| {
                let mut conn = conns[i % conns.len()].clone();
                let (script, key) = (Arc::clone(&script), keys[i].clone());
                let worker = workers[i % workers.len()].clone();
                let p = prefix.clone();
                async move {
                    let d = reservation(key.clone(), &worker);
                    let (exam, user, w) =
                        (key.exam_id.as_str(), key.user_id.as_str(), worker.as_str());
                    let mut invocation = script.prepare_invoke();
                    invocation
                        .key(format!("{p}:dispatch:exam:{exam}:user:{user}"))
                        .key(format!("{p}:worker:{w}"))
                        .key(format!("{p}:dispatched"))
                        .key(format!("{p}:index:worker-dispatches"))
                        .key(format!("{p}:sticky:exam:{exam}:sessions"))
                        .key(format!("{p}:sticky:exam:{exam}:affinity"))
                        // The worker, no dispatch superseded, no start
                        // permit asked for, then the record's fields.
                        .arg(w)
                        .arg("")
                        .arg("")
                        .arg("exam")
                        .arg(exam)
                        .arg("user")
                        .arg(user)
                        .arg("id")
                        .arg(d.id.to_string())
                        .arg("worker")
                        .arg(w)
                        .arg("state")
                        .arg("reserved")
                        .arg("reservedAt")
                        .arg(d.reserved_at.as_millis());
                    match invocation.invoke_async::<Vec<String>>(&mut conn).await {
                        Ok(reply) if reply.first().is_some_and(|t| t == "reserved") => {
                            ReserveOutcome::Reserved
                        }
                        Ok(_) => ReserveOutcome::Refused,
                        Err(e) => failed(e),
                    }
                }
            })
            .await
        }
        Backend::Postgres(_) => {
            let raw = move |pool: PgPool, i: usize| {
                let d = reservation(keys[i].clone(), &workers[i % workers.len()]);
                async move {
                    let record = match serde_json::to_value(&d) {
                        Ok(r) => r,
                        Err(e) => return failed(e),
                    };
                    let row: Result<(String,), _> = sqlx::query_as(
                        "SELECT outcome FROM vdi.reserve($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(d.key.exam_id.as_str())
                    .bind(d.key.user_id.as_str())
                    .bind(d.id.0)
                    .bind(d.worker.as_str())
                    .bind(d.reserved_at.as_millis() as i64)
                    .bind(record)
                    .bind(None::<uuid::Uuid>)
                    .fetch_one(&pool)
                    .await;
                    match row {
                        Ok((outcome,)) if outcome == "reserved" => ReserveOutcome::Reserved,
                        Ok(_) => ReserveOutcome::Refused,
                        Err(e) => failed(e),
                    }
                }
            };
            start
                .on_pools(deployment, config, "raw pool", progress, raw)
                .await?
        }
        Backend::Http(_) => bail!("no raw ceiling over HTTP"),
    };
    start.finish(deployment, driven).await
}

/// The worker with the most free slots in `(code, max, used)` rows, if any
/// has one.
fn most_available<'a>(rows: impl Iterator<Item = (&'a str, i64, i64)>) -> Option<&'a str> {
    rows.filter(|&(_, max, used)| max > used)
        .max_by_key(|&(code, max, used)| (max - used, std::cmp::Reverse(code)))
        .map(|(code, _, _)| code)
}

/// The naive allocation the exam platform's runbook implies (see the
/// module docs), on a fresh deployment. Redis and PostgreSQL only.
pub async fn naive(
    deployment: &Deployment,
    config: &SurgeConfig,
    progress: &ProgressBar,
) -> anyhow::Result<BaselineReport> {
    let mut start = start(deployment, config, progress).await;
    let keys = Arc::clone(&start.keys);
    let driven = match deployment.backend() {
        Backend::Redis(_) => {
            let (conns, p) = start.redis(deployment).await?;
            let conns = Arc::new(conns);
            start.begin().await;
            let (c, n) = (config.concurrency, config.students);
            drive::<ReserveTally, _, _>(c, n, start.deadline, progress, move |i| {
                let mut conn = conns[i % conns.len()].clone();
                let (key, p) = (keys[i].clone(), p.clone());
                async move { naive_redis(&mut conn, &p, key).await.unwrap_or_else(failed) }
            })
            .await
        }
        Backend::Postgres(_) => {
            let naive = move |pool: PgPool, i: usize| {
                let key = keys[i].clone();
                async move { naive_postgres(&pool, key).await.unwrap_or_else(failed) }
            };
            start
                .on_pools(deployment, config, "naive pool", progress, naive)
                .await?
        }
        other => bail!("no naive baseline on {}", other.name()),
    };
    start.finish(deployment, driven).await
}

/// Read every worker, pick, then write with separate commands.
async fn naive_redis(
    conn: &mut redis::aio::MultiplexedConnection,
    p: &str,
    key: SessionKey,
) -> redis::RedisResult<ReserveOutcome> {
    let codes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(format!("{p}:workers"))
        .query_async(conn)
        .await?;
    let mut pipe = redis::pipe();
    for code in &codes {
        pipe.cmd("HMGET")
            .arg(format!("{p}:worker:{code}"))
            .arg("max")
            .arg("unrecorded");
    }
    pipe.cmd("HGETALL").arg(format!("{p}:dispatched"));
    let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
    let dispatched: std::collections::HashMap<String, i64> =
        redis::from_redis_value(replies.pop().unwrap_or(redis::Value::Nil))?;
    let mut rows = Vec::with_capacity(codes.len());
    for (code, reply) in codes.iter().zip(replies) {
        let (max, unrecorded): (Option<i64>, Option<i64>) = redis::from_redis_value(reply)?;
        let used = unrecorded.unwrap_or(0) + dispatched.get(code).copied().unwrap_or(0);
        rows.push((code.as_str(), max.unwrap_or(0), used));
    }
    let Some(code) = most_available(rows.into_iter()) else {
        return Ok(ReserveOutcome::Refused);
    };
    let worker = WorkerId::parse("code", code).expect("stored code");
    let d = reservation(key.clone(), &worker);
    let (exam, user) = (key.exam_id.as_str(), key.user_id.as_str());
    let _: () = redis::cmd("HSET")
        .arg(format!("{p}:dispatch:exam:{exam}:user:{user}"))
        .arg(&[
            ("exam", exam),
            ("user", user),
            ("id", &d.id.to_string()),
            ("worker", code),
            ("state", "reserved"),
            ("reservedAt", &d.reserved_at.as_millis().to_string()),
        ])
        .query_async(conn)
        .await?;
    let _: i64 = redis::cmd("HINCRBY")
        .arg(format!("{p}:dispatched"))
        .arg(code)
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(ReserveOutcome::Reserved)
}

/// Read every worker, pick, then insert and update in separate statements.
async fn naive_postgres(
    pool: &sqlx::PgPool,
    key: SessionKey,
) -> Result<ReserveOutcome, sqlx::Error> {
    let rows: Vec<(String, i32, i64, i32)> = sqlx::query_as(
        "SELECT id, max_sessions, unrecorded, dispatched FROM vdi.workers WHERE accepting",
    )
    .fetch_all(pool)
    .await?;
    let choice = most_available(rows.iter().map(|(code, max, unrecorded, dispatched)| {
        (
            code.as_str(),
            i64::from(*max),
            *unrecorded + i64::from(*dispatched),
        )
    }));
    let Some(code) = choice else {
        return Ok(ReserveOutcome::Refused);
    };
    let worker = WorkerId::parse("code", code).expect("stored code");
    let d = reservation(key, &worker);
    let record = serde_json::to_value(&d).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO vdi.dispatches (exam_id, user_id, id, worker_id, state, reserved_at, record) \
         VALUES ($1, $2, $3, $4, 'reserved', $5, $6)",
    )
    .bind(d.key.exam_id.as_str())
    .bind(d.key.user_id.as_str())
    .bind(d.id.0)
    .bind(code)
    .bind(d.reserved_at.as_millis() as i64)
    .bind(record)
    .execute(pool)
    .await?;
    sqlx::query("UPDATE vdi.workers SET dispatched = dispatched + 1 WHERE id = $1")
        .bind(code)
        .execute(pool)
        .await?;
    Ok(ReserveOutcome::Reserved)
}

/// One pool per replica on the run's PostgreSQL namespace, for the
/// baselines (no library between the client and the statement).
async fn replica_pools(
    deployment: &Deployment,
    size: u32,
    what: &'static str,
) -> anyhow::Result<Vec<PgPool>> {
    let options = deployment.pg_options().context("PostgreSQL namespace")?;
    let mut pools = Vec::new();
    for _ in 0..deployment.stores().len() {
        pools.push(
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
                .await
                .context(what)?,
        );
    }
    Ok(pools)
}

#[cfg(test)]
mod tests {
    use super::most_available;

    #[test]
    fn naive_pick_is_the_highest_available() {
        let rows = [("a", 20, 5), ("b", 20, 1), ("c", 20, 1), ("d", 20, 20)];
        assert_eq!(most_available(rows.into_iter()), Some("b"));
        assert_eq!(most_available([("d", 20, 20)].into_iter()), None);
    }
}
