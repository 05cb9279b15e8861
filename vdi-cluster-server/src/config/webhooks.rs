//! `serve`'s webhook options: one endpoint from the command line for a
//! simple setup, and the retry window.

use std::time::Duration;

use clap::Args;
use vdi_cluster_core::outbox::RetryPolicy;

use super::ConfigError;

/// Webhook options of `vdi-cluster serve`.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Send every alert to this URL (an endpoint receiving every type is
    /// created at start if none has this URL). Needs `--webhook-secret`.
    #[arg(long, env = "VDI_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,

    /// The signing secret of `--webhook-url`: `whsec_` and the base64 of
    /// 24 to 64 random bytes (e.g. `whsec_$(openssl rand -base64 32)`);
    /// the receiver verifies deliveries with it. Never logged.
    #[arg(
        long,
        env = "VDI_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,

    /// Keep retrying a delivery for this long after its event, hours.
    #[arg(long, env = "VDI_WEBHOOK_RETRY_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(1..=168))]
    pub webhook_retry_hours: u64,

    /// Timeout of one delivery attempt, seconds. A delivery is leased for
    /// three times as long: a replica killed mid-delivery has its
    /// deliveries sent again by the next leader after that.
    #[arg(long, env = "VDI_WEBHOOK_TIMEOUT_SEC", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=120))]
    pub webhook_timeout_sec: u64,

    /// Consecutive failed attempts after which an endpoint is failing (a
    /// `webhook.failing` alert to the other endpoints).
    #[arg(long, env = "VDI_WEBHOOK_FAILING_AFTER", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub webhook_failing_after: u32,

    /// Keep delivered and failed deliveries this many days after their
    /// last attempt; the leader deletes older ones.
    #[arg(long, env = "VDI_WEBHOOK_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u64).range(1..=3_650))]
    pub webhook_retention_days: u64,

    /// Deliver webhooks to loopback, link-local and private addresses too
    /// (refused by default, at every delivery, after DNS resolution): for
    /// labs whose receivers run on this host or a private network.
    #[arg(long, env = "VDI_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
}

impl WebhookArgs {
    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        let send_timeout = Duration::from_secs(self.webhook_timeout_sec);
        RetryPolicy {
            give_up_after: Duration::from_secs(self.webhook_retry_hours * 3600),
            failing_after: self.webhook_failing_after,
            send_timeout,
            lease: send_timeout * 3,
            retention: Duration::from_secs(self.webhook_retention_days * 24 * 3600),
            ..RetryPolicy::default()
        }
    }

    /// The endpoint of the command line and its secret, if one is set.
    pub fn endpoint(&self) -> Result<Option<(&str, &str)>, ConfigError> {
        let url = self
            .webhook_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let secret = self
            .webhook_secret
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match (url, secret) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(ConfigError(
                "VDI_WEBHOOK_URL needs VDI_WEBHOOK_SECRET (--webhook-secret): whsec_ and the \
                 base64 of random bytes, e.g. whsec_$(openssl rand -base64 32)"
                    .into(),
            )),
            (Some(url), Some(secret)) => Ok(Some((url, secret))),
        }
    }
}
