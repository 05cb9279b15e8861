//! `vdi-loadgen seat --storm`: an exam start on nodes in a boot storm
//! ([`nodes`]: a start takes `base × (1 + k × in_flight)` and fails past
//! the node's start timeout), run twice in the same process on the same
//! fleet and students — without paced starts, then with them — and
//! compared: the time from the first click to the last seat, the starts
//! that failed at the timeout, and how far each student's
//! `estimatedReadySec` was from the wait it got.
//!
//! In process: one control plane (`ClusterService`) on the in-memory
//! store and the system clock; every student clicks once within the
//! window, as the exam application would. Without pacing a student's
//! request is held until its desktop is up, and one refused (its starts
//! failed on three workers) clicks again after a pause. With pacing the
//! students ask for the asynchronous answer (as a booked exam's do), get
//! 202 `starting` with an estimate and poll `GET` until their desktop is
//! up.

pub mod nodes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::service::{PacingConfig, SessionRequest, SessionState};
use vdi_cluster_core::testkit::heartbeat_with_slots;
use vdi_cluster_core::{ClusterService, MemoryStore, ServiceConfig, SessionKey};

pub use nodes::{NodeTally, StartModel, StormNodes};

/// How often a student whose desktop is starting asks again.
const POLL: Duration = Duration::from_millis(100);

/// The exam start of a storm run.
#[derive(Debug, Clone, PartialEq)]
pub struct StormConfig {
    /// Worker nodes.
    pub workers: usize,
    /// Slots per worker.
    pub slots: u32,
    /// Students, one click each within `window`.
    pub students: usize,
    /// The clicks are spread evenly over this window.
    pub window: Duration,
    /// The nodes' starts.
    pub model: StartModel,
    /// A refused student clicks again after this pause.
    pub retry_pause: Duration,
    /// Students not seated by then are counted as not seated.
    pub time_limit: Duration,
}

impl Default for StormConfig {
    fn default() -> Self {
        Self {
            workers: 20,
            slots: 20,
            students: 400,
            window: Duration::from_secs(10),
            model: StartModel {
                base: Duration::from_secs(1),
                k: 0.5,
                timeout: Duration::from_secs(10),
            },
            retry_pause: Duration::from_secs(1),
            time_limit: Duration::from_secs(300),
        }
    }
}

/// What one exam start measured.
#[derive(Debug, Clone, Default)]
pub struct StormReport {
    /// Students with a desktop.
    pub seated: usize,
    /// Students without one at the time limit.
    pub not_seated: usize,
    /// From the first click to the last seat.
    pub last_seat: Duration,
    /// Each seated student's time from click to desktop, sorted.
    pub click_to_seat: Vec<Duration>,
    /// Requests sent (clicks and re-clicks; polls not counted).
    pub requests: u64,
    /// Requests refused (no worker started the desktop).
    pub refused: u64,
    /// What the nodes saw.
    pub nodes: NodeTally,
    /// For each student answered `starting`: the estimate's error
    /// against the wait it got, `(estimate − actual) ÷ actual`, sorted.
    pub estimate_errors: Vec<f64>,
}

impl StormReport {
    /// The `q` quantile of the click-to-seat times.
    pub fn seat_quantile(&self, q: f64) -> Duration {
        quantile(&self.click_to_seat, q).unwrap_or_default()
    }

    /// The median student's estimate error, if any student got one.
    pub fn median_estimate_error(&self) -> Option<f64> {
        quantile(&self.estimate_errors, 0.5)
    }

    /// The share of estimates within ±`bound` of the wait.
    pub fn estimates_within(&self, bound: f64) -> Option<f64> {
        if self.estimate_errors.is_empty() {
            return None;
        }
        let within = self
            .estimate_errors
            .iter()
            .filter(|e| e.abs() <= bound)
            .count();
        Some(within as f64 / self.estimate_errors.len() as f64)
    }
}

fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// One student's clicks until seated (or the deadline).
#[derive(Debug, Default)]
struct Student {
    seated_at: Option<Instant>,
    click_to_seat: Option<Duration>,
    requests: u64,
    refused: u64,
    estimate_error: Option<f64>,
}

/// Runs the exam start once, `paced` or not.
pub async fn storm(config: &StormConfig, paced: bool) -> anyhow::Result<StormReport> {
    let nodes = StormNodes::new(config.workers, config.model);
    let service = Arc::new(
        ClusterService::builder(
            Arc::new(MemoryStore::new()),
            Arc::clone(&nodes) as Arc<dyn vdi_cluster_core::WorkerClient>,
        )
        .config(service_config(config, paced))
        .build(),
    );
    for n in 0..config.workers {
        let mut hb = heartbeat_with_slots(&StormNodes::code(n), config.slots, 0);
        hb.stamp = HeartbeatStamp {
            boot_id: Some("storm".into()),
            seq: Some(1),
        };
        service.fleet().heartbeat(hb).await?;
    }
    let first_click = Instant::now() + Duration::from_millis(100);
    let deadline = first_click + config.time_limit;
    let mut tasks = JoinSet::new();
    let students = config.students.max(1);
    for i in 0..students {
        let key = SessionKey::parse("storm", format!("s-{i:05}"))?;
        let click = first_click + config.window.mul_f64(i as f64 / students as f64);
        let (service, pause) = (Arc::clone(&service), config.retry_pause);
        tasks.spawn(async move {
            tokio::time::sleep_until(click.into()).await;
            student(&service, key, click, deadline, pause, paced).await
        });
    }
    let mut report = StormReport::default();
    let mut last = first_click;
    while let Some(done) = tasks.join_next().await {
        let s = done?;
        report.requests += s.requests;
        report.refused += s.refused;
        report.estimate_errors.extend(s.estimate_error);
        match (s.seated_at, s.click_to_seat) {
            (Some(at), Some(after)) => {
                report.seated += 1;
                report.click_to_seat.push(after);
                last = last.max(at);
            }
            _ => report.not_seated += 1,
        }
    }
    report.last_seat = last - first_click;
    report.click_to_seat.sort_unstable();
    report.estimate_errors.sort_by(f64::total_cmp);
    report.nodes = nodes.tally();
    Ok(report)
}

/// The control plane's configuration: calls long enough for the nodes to
/// answer their own timeout, and pacing on or off.
// `ServiceConfig` is `#[non_exhaustive]`: no struct literal from outside.
#[allow(clippy::field_reassign_with_default)]
fn service_config(config: &StormConfig, paced: bool) -> ServiceConfig {
    let mut c = ServiceConfig::default();
    c.worker_call_timeout = config.model.timeout + Duration::from_secs(5);
    c.heartbeat_ttl = config.time_limit * 2;
    c.offline_after = config.time_limit * 4;
    c.allocate_timeout = config.time_limit * 2;
    c.pacing = PacingConfig {
        enabled: paced,
        target: Some(config.model.timeout / 2),
        ..PacingConfig::default()
    };
    c
}

async fn student(
    service: &ClusterService,
    key: SessionKey,
    click: Instant,
    deadline: Instant,
    pause: Duration,
    paced: bool,
) -> Student {
    let mut out = Student::default();
    while Instant::now() < deadline {
        out.requests += 1;
        let placement = service.placement();
        let answer = if paced {
            placement
                .request_session_paced(key.clone(), Default::default(), true)
                .await
        } else {
            placement
                .request_session(key.clone(), Default::default())
                .await
        };
        match answer {
            Ok(SessionRequest::Placed(_)) => {
                let now = Instant::now();
                out.seated_at = Some(now);
                out.click_to_seat = Some(now - click);
                return out;
            }
            Ok(SessionRequest::Starting(starting)) => {
                let answered = Instant::now();
                if wait_until_placed(service, &key, deadline).await {
                    let now = Instant::now();
                    let actual = (now - answered).as_secs_f64().max(0.001);
                    let estimate = starting.estimated_ready.as_secs_f64();
                    out.estimate_error
                        .get_or_insert((estimate - actual) / actual);
                    out.seated_at = Some(now);
                    out.click_to_seat = Some(now - click);
                    return out;
                }
            }
            Ok(SessionRequest::Queued(_)) | Err(_) => out.refused += 1,
        }
        tokio::time::sleep(pause).await;
    }
    out
}

/// Polls the session until its desktop is up (`true`) or its start gave
/// up (`false`).
async fn wait_until_placed(service: &ClusterService, key: &SessionKey, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        match service.placement().session_state(key).await {
            Ok(SessionState::Placed(_)) => return true,
            Ok(SessionState::Starting(_)) => {}
            Ok(SessionState::Queued(_)) | Err(_) => return false,
        }
    }
    false
}
