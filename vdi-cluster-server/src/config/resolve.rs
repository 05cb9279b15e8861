//! What the options of `vdi-cluster serve` resolve to: the service, the
//! background loop, the HTTP limits, the throttle and the secrets.

use std::time::Duration;

use vdi_cluster_core::ServiceConfig;
use vdi_cluster_core::credential::CredentialPolicy;
use vdi_cluster_core::service::{BackgroundConfig, PacingConfig, RehearsalConfig};
use vdi_cluster_protocol::credentials::check_secret_length;

use super::ConfigError;
use super::ServeArgs;
use crate::state::HttpLimits;
use crate::throttle::ThrottleConfig;

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ServeArgs {
    /// The service configuration.
    pub fn service_config(&self) -> Result<ServiceConfig, ConfigError> {
        if self.offline_timeout_sec < self.heartbeat_ttl_sec {
            return Err(ConfigError(format!(
                "WORKER_OFFLINE_TIMEOUT_SEC ({}) must be at least WORKER_HEARTBEAT_TTL_SEC ({})",
                self.offline_timeout_sec, self.heartbeat_ttl_sec
            )));
        }
        if self.admission_counts_scalable > 0 && self.scale_command.is_none() {
            return Err(ConfigError(
                "--admission-counts-scalable needs --scale-command: without a scale hook no \
                 worker would be started for the slots it counts"
                    .into(),
            ));
        }
        Ok(ServiceConfig {
            heartbeat_ttl: Duration::from_secs(self.heartbeat_ttl_sec),
            offline_after: Duration::from_secs(self.offline_timeout_sec),
            sticky_ttl: Duration::from_secs(self.sticky_exam_ttl_sec),
            retry_count: self.allocate_retry_count,
            worker_call_timeout: Duration::from_millis(self.cluster_api_timeout_ms),
            allocate_timeout: Duration::from_secs(self.allocate_timeout_sec),
            adoption_grace: Duration::from_secs(self.adoption_grace_sec),
            live_session_grace: Duration::from_secs(self.live_session_grace_sec),
            exam_headroom_percent: self.exam_headroom_percent,
            queue_abandon: Duration::from_secs(self.queue_abandon_sec),
            session_grace: Duration::from_secs(self.session_grace_sec),
            disruption_alert: Duration::from_secs(self.disruption_alert_sec),
            slow_start: Duration::from_secs(self.slow_start_sec),
            scale_lead: Duration::from_secs(self.scale_lead_sec),
            scale_retry: Duration::from_secs(self.scale_retry_sec),
            rehearsal: RehearsalConfig {
                lead: (self.rehearsal_lead_sec > 0)
                    .then(|| Duration::from_secs(self.rehearsal_lead_sec)),
                slow_start: Duration::from_secs(self.rehearsal_slow_sec),
                check_timeout: Duration::from_secs(self.rehearsal_timeout_sec),
            },
            admission_scalable_slots: self.admission_counts_scalable,
            coalesce_wait: self.coalesce_wait_ms.map(Duration::from_millis),
            dispatch_stale: Duration::from_secs(self.dispatch_stale_sec),
            scan_count: usize::try_from(self.dispatch_scan_count).unwrap_or(usize::MAX),
            prewarm_concurrency: usize::try_from(self.prewarm_concurrency).unwrap_or(1),
            prewarm_max: self.prewarm_max,
            failure_policy: self.failure_policy,
            manual_migration_remind: (self.manual_migration_remind_sec > 0)
                .then(|| Duration::from_secs(self.manual_migration_remind_sec)),
            queue_alert_at: self.queue_alert_at,
            scheduling: self.scheduling_policy,
            heartbeat_interval: Duration::from_secs(self.heartbeat_interval_sec),
            mass_failure_percent: self.mass_failure_percent,
            replica_id: self.replica_name(),
            webhooks: self.webhooks.retry_policy(),
            credentials: CredentialPolicy {
                ttl: Duration::from_secs(self.worker_credential_ttl_sec),
                overlap: Duration::from_secs(self.worker_credential_overlap_sec),
            },
            credential_cache: Duration::from_millis(self.worker_credential_cache_ms),
            pacing: PacingConfig {
                enabled: self.pace_starts,
                target: self.start_target_ms.map(Duration::from_millis),
                ..PacingConfig::default()
            },
            ..ServiceConfig::default()
        })
    }

    /// The replica's lease-holder name: `--replica-id`, or
    /// `<host name>/<listen address>`.
    pub fn replica_name(&self) -> String {
        match non_empty(&self.replica_id) {
            Some(name) => name.to_owned(),
            None => {
                let host = sysinfo::System::host_name().unwrap_or_else(|| "localhost".into());
                format!("{host}/{}", self.listen)
            }
        }
    }

    /// The background loop's configuration. Its tick (health events, lease
    /// renewal) is never longer than the reconcile period, so a short
    /// `WORKER_RECONCILE_INTERVAL_SEC` is honoured.
    pub fn background_config(&self) -> BackgroundConfig {
        let defaults = BackgroundConfig::default();
        let reconcile_every = Duration::from_secs(self.reconcile_interval_sec);
        BackgroundConfig {
            tick: defaults.tick.min(reconcile_every),
            reconcile_every,
            reconcile_enabled: self.dispatch_cleanup_enabled,
            ..defaults
        }
    }

    /// The HTTP limits.
    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            body_bytes: usize::try_from(self.body_limit_bytes).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(self.request_timeout_sec),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_sec),
            idle_timeout: Duration::from_secs(self.idle_timeout_sec),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_peer: usize::try_from(self.max_connections_per_peer)
                .unwrap_or(usize::MAX),
        }
    }

    /// The throttle of failed authentication.
    pub fn throttle_config(&self) -> ThrottleConfig {
        ThrottleConfig {
            max_failures: self.auth_failure_limit,
            window: Duration::from_secs(self.auth_failure_window_sec),
            trusted_proxies: self.trusted_proxies.clone(),
            ..ThrottleConfig::default()
        }
    }

    /// Refuses configured secrets shorter than
    /// [`MIN_SECRET_BYTES`](vdi_cluster_protocol::credentials::MIN_SECRET_BYTES),
    /// naming the variable.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        let secrets = [
            ("JWT_SECRET", self.jwt_secret()),
            ("WORKER_CLUSTER_TOKEN", self.worker_cluster_token()),
            ("WORKER_HEARTBEAT_TOKEN", self.worker_heartbeat_token()),
        ];
        for (variable, secret) in secrets {
            if let Some(secret) = secret {
                check_secret_length(variable, secret).map_err(ConfigError)?;
            }
        }
        Ok(())
    }

    /// `JWT_SECRET`, if set and not blank.
    pub fn jwt_secret(&self) -> Option<&str> {
        non_empty(&self.jwt_secret)
    }

    /// `WORKER_HEARTBEAT_TOKEN`, if set and not blank.
    pub fn worker_heartbeat_token(&self) -> Option<&str> {
        self.tokens.worker_token()
    }

    /// `WORKER_CLUSTER_TOKEN`, if set and not blank.
    pub fn worker_cluster_token(&self) -> Option<&str> {
        self.tokens.cluster_token()
    }
}
