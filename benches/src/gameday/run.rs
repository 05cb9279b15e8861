//! The day itself, on a deployment that is up: the exam booked, the
//! cluster started, the students at work through the faults, the checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use vdi_cluster_core::ServiceConfig;
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::time::{Clock, SystemClock};
use vdi_cluster_protocol::exams::BookExamRequest;

use super::checks::{self, Check};
use super::cluster::{Cluster, ClusterSpec, StoreArgs};
use super::monitor::{Monitor, POLL_EVERY};
use super::procs::PrivateRedis;
use super::students::{Crowd, Habits, Phase, Plan};
use super::timeline::{FAULTS, Schedule, StoreHandle};
use super::{EXAM, FaultRow, GameDayConfig, GameDayReport, host_of, unit};
use super::{receiver, students, timeline};
use crate::deploy::{Backend, Deployment};
use crate::http::with_database;
use crate::table::thousands;

/// Books the exam for what admission accepts (the fleet less its
/// headroom), at most the students, for two hours from now.
async fn book(cluster: &Cluster, config: &GameDayConfig) -> anyhow::Result<u32> {
    let headroom = u64::from(ServiceConfig::default().exam_headroom_percent.min(100));
    let bookable = config.capacity() * (100 - headroom) / 100;
    let booked = u32::try_from(bookable.min(config.students as u64))?.max(1);
    let now = SystemClock.now();
    let exam = BookExamRequest {
        exam_id: EXAM.into(),
        name: "Game day".into(),
        starts_at: format_rfc3339(now),
        ends_at: format_rfc3339(now.plus(Duration::from_secs(2 * 3600))),
        students: booked,
        constraints: None,
        prewarm: None,
        teardown_sec: None,
        queue: Some(true),
        network_policy: None,
        extensions: None,
        extra_time: None,
    };
    let (status, body) = cluster
        .admin_post("/api/vdi/exams", &serde_json::to_value(&exam)?)
        .await?;
    if status != 201 {
        bail!("booking the exam: {status} {body}");
    }
    Ok(booked)
}

/// Runs the day on a deployment that is up: books the exam, starts the
/// cluster, lets the students work through the faults, then checks.
pub(super) async fn run_on(
    config: &GameDayConfig,
    deployment: &Deployment,
    redis: Option<&mut PrivateRedis>,
    logs: &std::path::Path,
) -> anyhow::Result<GameDayReport> {
    let started = Instant::now();
    let (store, store_detail) = match deployment.backend() {
        Backend::Redis(url) => {
            let (_, prefix) = deployment.redis_namespace().context("Redis prefix")?;
            (
                StoreArgs::Redis {
                    url: url.clone(),
                    prefix: prefix.to_owned(),
                },
                format!(
                    "{url}, key prefix {prefix}{}",
                    if redis.is_some() {
                        " (a redis-server of this run, AOF with appendfsync always)"
                    } else {
                        ""
                    }
                ),
            )
        }
        Backend::Postgres(url) => {
            let db = deployment
                .pg_options()
                .and_then(|o| o.get_database())
                .context("database name")?;
            (
                StoreArgs::Postgres {
                    url: with_database(url, db),
                },
                format!("database {db} of the server at {}", host_of(url)),
            )
        }
        other => bail!("no game day on {other}"),
    };
    let spec = ClusterSpec {
        server_bin: config.server_bin.clone(),
        store,
        replicas: config.replicas,
        agents: config.agents,
        slots: config.slots,
        start_latency_ms: config.start_latency_ms,
        timings: config.timings,
        serve_flags: Vec::new(),
    };
    let mut cluster = Cluster::start(&spec, logs).await?;
    let receiver = receiver::Receiver::start().await?;
    let (status, created) = cluster
        .admin_post(
            "/api/vdi/webhooks",
            &json!({"url": receiver.url, "description": "game day receiver"}),
        )
        .await?;
    if status != 201 {
        bail!("registering the webhook receiver: {status} {created}");
    }
    let endpoint = created["id"]
        .as_str()
        .context("the endpoint's id")?
        .to_owned();
    receiver.set_secret(
        created["secret"]
            .as_str()
            .context("the endpoint's secret")?,
    );
    let booked = book(&cluster, config).await?;
    // Every replica sees the booking once its cached calendar expires.
    tokio::time::sleep(Duration::from_secs(1)).await;

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

    let first_click = Instant::now() + Duration::from_millis(200);
    let schedule = Schedule {
        first_click,
        window: config.window,
        gap: config.fault_gap,
        partition: config.partition,
        store_down: config.store_down,
    };
    let submit_from = first_click + config.window;
    // Submissions go on until shortly before the end, past the last fault.
    let submit_span = schedule.end() - config.fault_gap / 4 - submit_from;
    let n = config.students.max(1);
    let until = submit_from + submit_span;
    let plans: Vec<Plan> = (0..n)
        .map(|i| {
            let k = i as u64;
            let share =
                |salt: u64, percent: u32| unit(config.seed, k, salt) * 100.0 < f64::from(percent);
            let click_at = if share(4, config.late_percent) {
                submit_from + submit_span.mul_f64(unit(config.seed, k, 5))
            } else {
                first_click + config.window.mul_f64(i as f64 / n as f64)
            };
            // A submission somewhere between the student's click (or the
            // window's end) and shortly before the day's end.
            let from = click_at.max(submit_from);
            let submit_at = share(1, config.submit_percent)
                .then(|| from + (until - from).mul_f64(unit(config.seed, k, 2)));
            Plan {
                user: format!("s-{i:05}"),
                click_at,
                submit_at,
                double_click: share(3, config.double_click_percent),
            }
        })
        .collect();
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let crowd = Arc::new(Crowd::new(
        EXAM.into(),
        cluster.replicas.iter().map(|r| r.base.clone()).collect(),
        (cluster.service_jwt.clone(), cluster.admin_jwt.clone()),
        Arc::clone(&monitor),
        plans,
        FAULTS.len(),
        phase_rx,
        Habits {
            check_every: Duration::from_millis(500),
            poll_every: config.poll_every,
            retry_pause: Duration::from_secs(1),
            freeze: Duration::from_secs(2),
        },
    )?);
    let mut students = JoinSet::new();
    for i in 0..n {
        students.spawn(Arc::clone(&crowd).live(i));
    }
    let auditing = tokio::spawn(Arc::clone(&crowd).audit_waiting_room());

    let store_handle = match (redis, deployment.backend()) {
        (Some(r), _) => StoreHandle::Redis(r),
        (None, Backend::Postgres(_)) => StoreHandle::Postgres(deployment),
        (None, other) => StoreHandle::SharedRedis(other.url().to_owned()),
    };
    let ran = timeline::run(&mut cluster, store_handle, &crowd, schedule).await;
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => {
            students.abort_all();
            monitoring.abort();
            auditing.abort();
            return Err(e);
        }
    };

    // Settle: nobody submits any more; wait until every student is
    // settled, every agent runs exactly the students seated on it, and
    // nobody waits while the control plane has a free slot.
    let _ = phase_tx.send(Phase::Settling);
    let settle_from = Instant::now();
    let settle_deadline = settle_from + config.settle;
    let mut last_look;
    let settled_after = loop {
        let round = Instant::now();
        tokio::time::sleep(POLL_EVERY * 2 + Duration::from_millis(100)).await;
        let unsettled = crowd.unsettled(round);
        let seated = crowd.seated();
        let disagreeing = monitor
            .codes()
            .filter(|&code| {
                !monitor.sessions_since(code, round).is_some_and(|keys| {
                    keys.iter()
                        .all(|k| seated.get(k).is_some_and(|w| w == code))
                        && seated
                            .iter()
                            .filter(|(_, w)| w.as_str() == code)
                            .all(|(k, _)| keys.contains(k))
                })
            })
            .count();
        let waiting = crowd
            .snapshot()
            .iter()
            .filter(|s| s.holding == students::Holding::Queued)
            .count();
        let room = cluster
            .summary()
            .await
            .map_or(0, |s| s.total_available_sessions);
        // The control plane's records on each worker against what its
        // agent runs (read only once the rest agrees: it costs a call per
        // worker).
        let mut unmatched = Vec::new();
        if unsettled == 0 && disagreeing == 0 {
            for code in monitor.codes() {
                let runs = monitor.sessions_since(code, round);
                let records = cluster.worker_sessions(code).await;
                let difference = match (runs, records) {
                    (Some(runs), Ok(records)) => {
                        let recorded: Vec<String> = records
                            .sessions
                            .iter()
                            .map(|d| format!("{}/{}", d.exam_id, d.user_id))
                            .collect();
                        let without_desktop: Vec<&String> =
                            recorded.iter().filter(|k| !runs.contains(*k)).collect();
                        let without_record: Vec<&String> =
                            runs.iter().filter(|k| !recorded.contains(*k)).collect();
                        (!without_desktop.is_empty() || !without_record.is_empty()).then(|| {
                            format!(
                                "{code}: records without a desktop {without_desktop:?}, \
                                 desktops without a record {without_record:?}"
                            )
                        })
                    }
                    (None, _) => Some(format!("{code}: its agent's sessions unread")),
                    (_, Err(e)) => Some(format!("{code}: its records unread ({e:#})")),
                };
                unmatched.extend(difference);
            }
        }
        last_look = format!(
            "{unsettled} students neither waiting nor at a running desktop, {disagreeing} agents \
             running other sessions than the students hold, {} workers whose records \
             differ from what runs{}, {waiting} waiting while {room} slots are free",
            unmatched.len(),
            if unmatched.is_empty() {
                String::new()
            } else {
                format!(" ({})", unmatched.join("; "))
            }
        );
        if unsettled == 0 && disagreeing == 0 && unmatched.is_empty() && (waiting == 0 || room == 0)
        {
            break Some(settle_from.elapsed());
        }
        if Instant::now() > settle_deadline {
            break None;
        }
    };
    // While the checks read the cluster, waiting students keep asking for
    // their place (or they would leave the room); nobody else acts.
    let _ = phase_tx.send(Phase::Hold);
    tokio::time::sleep(POLL_EVERY * 2).await;

    let mut checks = Vec::new();
    let (held, figures) = checks::holdings(&cluster, &crowd, Duration::from_secs(15)).await;
    checks.extend(held);
    let store = deployment.reconnect().await?;
    checks.push(checks::over_allocation(&monitor, store.as_ref()).await);
    let (hooks, webhook_figures) =
        checks::webhooks(store.as_ref(), &endpoint, &receiver, config.webhook_wait).await;
    checks.push(hooks);
    let _ = phase_tx.send(Phase::Stop);
    let stopping = Instant::now() + Duration::from_secs(3);
    while !students.is_empty() && Instant::now() < stopping {
        let _ = tokio::time::timeout(Duration::from_millis(200), students.join_next()).await;
    }
    students.abort_all();
    auditing.abort();
    monitoring.abort();
    checks.push(Check {
        name: "no process crashed",
        passed: ran.crashes.is_empty(),
        detail: if ran.crashes.is_empty() {
            format!(
                "{} replicas and {} agents exited only when killed",
                cluster.replicas.len(),
                cluster.agents.len()
            )
        } else {
            ran.crashes.join(" | ")
        },
    });
    let log = crowd.log.lock().expect("log lock").clone();
    let a = &log.answers;
    checks.push(Check {
        name: "no answer the API should never give",
        passed: a.unexpected == 0,
        detail: if a.unexpected == 0 {
            format!(
                "{} requests: only 200/201/202/404/503 (and {} transport errors while replicas were down)",
                thousands(a.requests as f64),
                a.transport_errors
            )
        } else {
            format!("{} unexpected: {}", a.unexpected, a.first_unexpected.join(" | "))
        },
    });
    let au = &log.audits;
    checks.push(Check {
        name: "the waiting room in order all day (listing read every 2 s)",
        passed: au.problems == 0 && au.listings > 0,
        detail: if au.problems == 0 {
            format!(
                "{} listings, up to {} waiting: positions 1..n, nobody twice, nobody overtaken",
                au.listings, au.most_waiting
            )
        } else {
            format!(
                "{} problems in {} listings: {}",
                au.problems,
                au.listings,
                au.first_problems.join(" | ")
            )
        },
    });
    let dd = &log.doubles;
    checks.push(Check {
        name: "double clicks never refused while the student holds a slot",
        passed: dd.refused_while_held == 0 && dd.two_dispatches == 0,
        detail: format!(
            "{} double clicks: {} answered 503 beside a desktop, {} answered two different dispatches, \
             {} queued beside a desktop",
            dd.students, dd.refused_while_held, dd.two_dispatches, dd.queued_while_held
        ),
    });
    checks.push(Check {
        name: "settled after the faults (records = what runs, nobody waits beside a free slot)",
        passed: settled_after.is_some(),
        detail: match settled_after {
            Some(after) => format!("in {:.1} s", after.as_secs_f64()),
            None => format!("not within {} s: {last_look}", config.settle.as_secs()),
        },
    });

    let states = crowd.snapshot();
    let faults = ran
        .injected
        .iter()
        .enumerate()
        .map(|(k, injected)| {
            let first_placement = log
                .placements
                .iter()
                .filter(|&&p| p >= injected.at_ms)
                .min()
                .map(|p| Duration::from_millis(p - injected.at_ms));
            let mut back = log.back[k].clone();
            back.sort();
            let not_back = states
                .iter()
                .filter(|s| s.displaced == Some(Some(k)))
                .count() as u64;
            FaultRow {
                injected: injected.clone(),
                first_placement,
                displaced: log.displaced[k],
                back_p50: back.get(back.len() / 2).copied(),
                back_last: back.last().copied(),
                not_back,
            }
        })
        .collect();
    let requests = json!({
        "sent": a.requests, "placed": a.placed, "existing": a.existing, "queued": a.queued,
        "refused503": a.refused, "transportErrors": a.transport_errors,
        "unexpected": a.unexpected, "displacedOutsideFaults": log.displaced_without_fault,
        "doubleClicks": dd.students,
    });
    Ok(GameDayReport {
        backend: deployment.backend().name(),
        store_detail,
        config: config.clone(),
        booked,
        faults,
        checks,
        students: figures,
        webhooks: webhook_figures,
        requests,
        settled_after,
        elapsed: started.elapsed(),
        logs: None,
    })
}
