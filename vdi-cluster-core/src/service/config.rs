//! [`ServiceConfig`]: every tunable of the service, with the source systems'
//! defaults.

use std::time::Duration;

use crate::credential::CredentialPolicy;
use crate::health::ResourceThresholds;
use crate::ids::WorkerId;
use crate::pacing::{PermitReturn, StartSample};
use crate::reconcile::{FailurePolicy, ReconcileLimits};
use crate::scheduler::SchedulingPolicy;

/// Every tunable of the service, with the source systems' defaults
/// (docs/compat/). Build it with struct update syntax: `ServiceConfig { retry_count: 5, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// Webhook retries and the failing-endpoint rule.
    pub webhooks: crate::outbox::RetryPolicy,
    /// `WORKER_HEARTBEAT_TTL_SEC` (120 s).
    pub heartbeat_ttl: Duration,
    /// Hard timeout after which a silent worker is offline (600 s).
    pub offline_after: Duration,
    /// After a control-plane start, judge no worker as silent for longer
    /// than since the start (true).
    pub restart_grace: bool,
    /// Resource thresholds (SkyPanelV2's, docs/compat/skypanelv2.md).
    pub thresholds: ResourceThresholds,
    /// `WORKER_STICKY_EXAM_TTL_SEC` (21600 s).
    pub sticky_ttl: Duration,
    /// `WORKER_ALLOCATE_RETRY_COUNT` (3): worker calls per allocation.
    pub retry_count: u32,
    /// `CLUSTER_API_TIMEOUT_MS` (15000 ms): timeout of one worker call.
    pub worker_call_timeout: Duration,
    /// `VDI_ALLOCATE_TIMEOUT_SEC` (90 s): reservations older are reclaimed.
    pub allocate_timeout: Duration,
    /// `WORKER_DISPATCH_STALE_SEC` (21600 s): active dispatches older, with
    /// no live session reported, are removed.
    pub dispatch_stale: Duration,
    /// `WORKER_DISPATCH_SCAN_COUNT` (200): dispatches per scan page.
    pub scan_count: usize,
    /// Scan pages per step of the leader's reconcile pass (50): a pass
    /// goes on over as many steps as the dispatches need, each resuming
    /// from the cursor the previous one saved.
    pub scan_pages_per_step: usize,
    /// Scan pages an operator's reconcile pass may read before it stops
    /// short of the end of the keyspace (1,000: 200,000 dispatches at the
    /// default `scan_count`).
    pub on_demand_scan_pages: usize,
    /// A session missing from a worker's live list is removed only if it was
    /// activated at least this long before that heartbeat (60 s).
    pub live_session_grace: Duration,
    /// How long a worker's report of a session must trail its record before
    /// the record is repaired toward it: a reservation on the reporting
    /// worker is confirmed, and a duplicate of a dispatch settled on
    /// another worker is stopped, only this long after (30 s; never less
    /// than `worker_call_timeout`, see [`fleet_grace`](Self::fleet_grace)).
    pub adoption_grace: Duration,
    /// How long an `allocate` waits for an allocation of the same session
    /// already in flight (on any replica) before answering
    /// [`Error::AllocationInProgress`](crate::Error::AllocationInProgress).
    /// `None` (the default): `worker_call_timeout × retry_count`, as long as
    /// that allocation may take; see [`coalesce_bound`](Self::coalesce_bound).
    pub coalesce_wait: Option<Duration>,
    /// What happens to sessions of failed workers.
    pub failure_policy: FailurePolicy,
    /// How often `migration.manual_required` is repeated while sessions
    /// the `manual` policy orphaned are not evacuated (15 min); `None`
    /// alerts once, when they are marked.
    pub manual_migration_remind: Option<Duration>,
    /// Waiting students at which an exam's queue is reported forming
    /// (`exam.queue_forming`, once until it empties): 1, the first.
    pub queue_alert_at: u32,
    /// No migration when at least this percentage of enabled workers is
    /// silent at once (50).
    pub mass_failure_percent: u32,
    /// Spread or pack.
    pub scheduling: SchedulingPolicy,
    /// Prefer workers holding sessions of the exam (true).
    pub exam_affinity: bool,
    /// Herd damping width (3).
    pub herd_width: usize,
    /// `VDI_PREWARM_MAX` (80).
    pub prewarm_max: u32,
    /// `VDI_PREWARM_CONCURRENCY` (4).
    pub prewarm_concurrency: usize,
    /// Interval the heartbeat answer asks workers to use (20 s).
    pub heartbeat_interval: Duration,
    /// Jitter of that interval, percent either way (10).
    pub heartbeat_jitter_percent: u32,
    /// How long this replica reuses what it read for placing: the
    /// snapshot of the worker list and the exam calendar the session API
    /// consults (500 ms; zero: always read them fresh); each exam's
    /// placement hints live ten times as long.
    pub snapshot_max_age: Duration,
    /// Seed of tie-breaking and herd damping (random by default).
    pub seed: u64,
    /// This replica's name, as lease holder.
    pub replica_id: String,
    /// Percentage of each worker pool's slots exam admission keeps free
    /// (`VDI_EXAM_HEADROOM_PERCENT`, 10).
    pub exam_headroom_percent: u32,
    /// How far after the requested start a refused booking searches for
    /// the earliest start that fits (7 days).
    pub exam_fit_horizon: Duration,
    /// Compare-and-set attempts of one booking, change or cancel before it
    /// gives up with a conflict (32).
    pub exam_write_attempts: u32,
    /// How long after a student's own end (the exam's `endsAt`, or later
    /// with an extension) the leader releases the desktop (60 s; the
    /// server's `--session-grace-sec`).
    pub session_grace: Duration,
    /// How long before a student's own end the leader writes
    /// `session.expiring` (5 min).
    pub session_expiry_warning: Duration,
    /// Lifetime and rotation overlap of workers' own credentials (30 days,
    /// 1 hour).
    pub credentials: CredentialPolicy,
    /// How long a replica may accept a worker's credential (or the shared
    /// token for a worker without one) from its memory of the last read,
    /// instead of reading it again (2 s; zero reads it on every request).
    /// A refusal always reads it; a revocation or reset made through
    /// another replica is honoured within this time, through this replica
    /// at once (the server's `--worker-credential-cache-ms`).
    pub credential_cache: Duration,
    /// A queued student who has not asked for this long leaves the
    /// waiting room (60 s; the server's `--queue-abandon-sec`).
    pub queue_abandon: Duration,
    /// The wait per position a queue's estimate assumes before it has
    /// placed two students (30 s).
    pub queue_wait_per_position: Duration,
    /// How long before a booked exam's prewarm lead begins the leader
    /// asks the scale hook for the slots it would be short (30 min; the
    /// server's `--scale-lead-sec`).
    pub scale_lead: Duration,
    /// The first wait before a failed call of the scale hook is repeated,
    /// doubled per attempt up to 64 times (10 s).
    pub scale_retry: Duration,
    /// Slots per zone the scale hook may add that admission counts: a
    /// booking beyond the fleet is accepted "with scale-up" while its
    /// window has not begun (0: off; the server's
    /// `--admission-counts-scalable`).
    pub admission_scalable_slots: u32,
    /// Paced starts (off by default): see [`PacingConfig`].
    pub pacing: PacingConfig,
    /// A student's lost time (the disruption ledger) that raises
    /// `session.disrupted`, once at each multiple it reaches (60 s; the
    /// server's `--disruption-alert-sec`; zero: never).
    pub disruption_alert: Duration,
    /// A desktop that takes longer than this to start is a `slowStart`
    /// entry in the student's ledger (30 s; the server's
    /// `--slow-start-sec`; zero: never).
    pub slow_start: Duration,
    /// Rehearsals before exams: see [`RehearsalConfig`].
    pub rehearsal: RehearsalConfig,
}

/// Rehearsals ([`crate::rehearsal`]): one test desktop per eligible worker
/// before an exam.
#[derive(Debug, Clone, PartialEq)]
pub struct RehearsalConfig {
    /// How long before a booked exam's prewarm lead begins the leader
    /// runs its rehearsal by itself, once (`None`, the default: only when
    /// an operator asks; the server's `--rehearsal-lead-sec`).
    pub lead: Option<Duration>,
    /// A test desktop that takes longer than this to start makes its
    /// worker `slow` (60 s; the server's `--rehearsal-slow-sec`).
    pub slow_start: Duration,
    /// How long one worker's check may take, the test desktop's start and
    /// stop together (180 s; the server's `--rehearsal-timeout-sec`).
    pub check_timeout: Duration,
}

impl Default for RehearsalConfig {
    fn default() -> Self {
        Self {
            lead: None,
            slow_start: crate::rehearsal::DEFAULT_SLOW_START,
            check_timeout: Duration::from_secs(180),
        }
    }
}

/// Paced starts ([`crate::pacing`]): every start of a desktop takes a
/// permit of its worker first.
#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    /// Whether starts are paced (false). Off, starts go to the workers as
    /// they come and the session API answers as before.
    pub enabled: bool,
    /// The start time the adapted limit keeps starts within; `None` (the
    /// default): half of `worker_call_timeout`.
    pub target: Option<Duration>,
    /// A permit's (and a place in the queue's) lease; `None` (the
    /// default): twice `worker_call_timeout`, so a call never outlives it.
    pub lease: Option<Duration>,
    /// How many of each worker's last starts the limit rests on (50).
    pub samples_kept: u32,
    /// How often a start waiting for a permit asks again, renewing its
    /// place (250 ms).
    pub poll: Duration,
    /// How long this replica reuses a worker's last starts, read from the
    /// store, for its start limit (5 s; zero: read at every start). Its
    /// own starts move them at once; other replicas' are seen within this.
    pub inputs_max_age: Duration,
}

impl PacingConfig {
    /// What a step that ends a reservation on `worker` carries to give back
    /// the start permit or place held under its id, with its start's
    /// `sample`: nothing when starts are not paced, so such a step costs
    /// what it did.
    pub(crate) fn permit_return(
        &self,
        worker: &WorkerId,
        sample: Option<StartSample>,
    ) -> Option<PermitReturn> {
        self.enabled.then(|| PermitReturn {
            worker: worker.clone(),
            sample,
            keep: self.samples_kept,
        })
    }
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            target: None,
            lease: None,
            samples_kept: 50,
            poll: Duration::from_millis(250),
            inputs_max_age: Duration::from_secs(5),
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let replica = uuid::Uuid::new_v4();
        Self {
            webhooks: crate::outbox::RetryPolicy::default(),
            heartbeat_ttl: Duration::from_secs(120),
            offline_after: Duration::from_secs(600),
            restart_grace: true,
            thresholds: ResourceThresholds::default(),
            sticky_ttl: Duration::from_secs(21_600),
            retry_count: 3,
            worker_call_timeout: Duration::from_millis(15_000),
            allocate_timeout: Duration::from_secs(90),
            dispatch_stale: Duration::from_secs(21_600),
            scan_count: 200,
            scan_pages_per_step: 50,
            on_demand_scan_pages: 1_000,
            live_session_grace: Duration::from_secs(60),
            adoption_grace: Duration::from_secs(30),
            coalesce_wait: None,
            failure_policy: FailurePolicy::Automatic,
            manual_migration_remind: Some(Duration::from_secs(900)),
            queue_alert_at: 1,
            mass_failure_percent: 50,
            scheduling: SchedulingPolicy::Spread,
            exam_affinity: true,
            herd_width: 3,
            prewarm_max: 80,
            prewarm_concurrency: 4,
            heartbeat_interval: Duration::from_secs(20),
            heartbeat_jitter_percent: 10,
            snapshot_max_age: Duration::from_millis(500),
            seed: replica.as_u64_pair().0,
            replica_id: format!("replica-{}", &replica.simple().to_string()[..8]),
            exam_headroom_percent: 10,
            exam_fit_horizon: Duration::from_secs(7 * 86_400),
            exam_write_attempts: 32,
            session_grace: Duration::from_secs(60),
            session_expiry_warning: Duration::from_secs(300),
            credentials: CredentialPolicy::default(),
            credential_cache: Duration::from_secs(2),
            queue_abandon: Duration::from_secs(60),
            queue_wait_per_position: Duration::from_secs(30),
            scale_lead: Duration::from_secs(1_800),
            scale_retry: Duration::from_secs(10),
            admission_scalable_slots: 0,
            pacing: PacingConfig::default(),
            disruption_alert: Duration::from_secs(60),
            slow_start: Duration::from_secs(30),
            rehearsal: RehearsalConfig::default(),
        }
    }
}

impl ServiceConfig {
    /// The grace the fleet's reports are judged with: `adoption_grace`,
    /// but at least `worker_call_timeout`, so an allocation still waiting
    /// for its worker confirms its own reservation.
    pub fn fleet_grace(&self) -> Duration {
        self.adoption_grace.max(self.worker_call_timeout)
    }

    /// How long a duplicate allocate waits for the one in flight:
    /// `coalesce_wait`, or by default `worker_call_timeout × retry_count`.
    pub fn coalesce_bound(&self) -> Duration {
        self.coalesce_wait
            .unwrap_or_else(|| self.worker_call_timeout * self.retry_count.max(1))
    }

    /// How long a promoter holds the head of a queue: an allocation's
    /// longest wait ([`coalesce_bound`](Self::coalesce_bound)) plus one
    /// worker call, so a live promoter never loses its claim and a dead
    /// one's lapses soon after.
    pub fn queue_claim_ttl(&self) -> Duration {
        self.coalesce_bound() + self.worker_call_timeout
    }

    /// The start time paced starts are kept within.
    pub fn pacing_target(&self) -> Duration {
        self.pacing.target.unwrap_or(self.worker_call_timeout / 2)
    }

    /// The lease of a start permit.
    pub fn permit_lease(&self) -> Duration {
        self.pacing.lease.unwrap_or(self.worker_call_timeout * 2)
    }

    /// How long a start waits for its permit before the placement tries
    /// another worker: what is left of `allocate_timeout` (after which the
    /// waiting reservation would be reclaimed) once the call is made.
    pub fn permit_wait_bound(&self) -> Duration {
        self.allocate_timeout
            .saturating_sub(self.worker_call_timeout)
            .max(self.pacing.poll)
    }

    /// The ages reconcile judges dispatches by.
    pub fn reconcile_limits(&self) -> ReconcileLimits {
        ReconcileLimits {
            allocate_timeout: self.allocate_timeout,
            dispatch_stale: self.dispatch_stale,
            live_session_grace: self.live_session_grace,
        }
    }
}
