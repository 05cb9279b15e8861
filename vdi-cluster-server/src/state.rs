//! [`AppState`]: what every handler shares — the [`ClusterService`], the
//! accepted credentials, the throttle of failed authentication, metrics,
//! the events hub, HTTP limits, the statistics cache, and the tracker of
//! detached work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vdi_cluster_core::events::FanoutSink;
use vdi_cluster_core::service::ClusterServiceBuilder;
use vdi_cluster_core::{ClusterService, EventSink, LogSink, Store, WorkerClient};

use vdi_cluster_core::service::WebhookSender;

use vdi_cluster_node::tls::Tls;

use crate::auth::AuthConfig;
use crate::error::ApiError;
use crate::events::EventHub;
use crate::install::InstallConfig;
use crate::metrics::{Metrics, MetricsSink};
use crate::stats_cache::StatsCache;
use crate::throttle::{Throttle, ThrottleConfig};

/// Limits applied to every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body, bytes (1 MiB); larger is a 413.
    pub body_bytes: usize,
    /// Longest time to produce a response (60 s); longer is a 408. Work
    /// already started (an allocation) runs to its end regardless.
    pub request_timeout: Duration,
    /// Longest time a new connection may take to send a complete request
    /// head (10 s); slower peers are disconnected.
    pub header_read_timeout: Duration,
    /// A connection with no bytes either way for this long (60 s) is shut
    /// down gracefully (a request in progress still gets its answer).
    pub idle_timeout: Duration,
    /// Most connections open at once (4,096, and never more than the
    /// process's file-descriptor limit allows); at the cap, new
    /// connections wait for one to close.
    pub max_connections: usize,
    /// Most connections open at once from one peer address (an IPv6 /64
    /// counts as one address; trusted proxies are exempt): 1,024, and
    /// never more than half of `max_connections`, so one client cannot
    /// starve the rest. A connection past it is closed at once.
    pub max_connections_per_peer: usize,
}

impl HttpLimits {
    /// The per-peer cap in force: `max_connections_per_peer`, at most
    /// half of `max_connections`, at least one.
    pub fn per_peer_cap(&self) -> usize {
        self.max_connections_per_peer
            .min(self.max_connections / 2)
            .max(1)
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4_096,
            max_connections_per_peer: 1_024,
        }
    }
}

#[derive(Debug)]
struct Inner {
    service: Arc<ClusterService>,
    auth: AuthConfig,
    throttle: Throttle,
    metrics: Arc<Metrics>,
    events: EventHub,
    limits: HttpLimits,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    store_name: String,
    install: Option<InstallConfig>,
    tls: Option<Tls>,
    stats_cache: StatsCache,
}

/// Shared state of the HTTP server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// Builds an [`AppState`] and the [`ClusterService`] inside it, wired to
/// the events hub and metrics: the service's own settings (configuration,
/// clock) are set on its builder through [`service`](Self::service).
#[derive(Debug)]
pub struct AppStateBuilder {
    service: ClusterServiceBuilder,
    metrics: Arc<Metrics>,
    events: EventHub,
    auth: AuthConfig,
    limits: HttpLimits,
    throttle: ThrottleConfig,
    store_name: String,
    shutdown: CancellationToken,
    install: Option<InstallConfig>,
    tls: Option<Tls>,
    stats_window: Duration,
}

impl AppStateBuilder {
    /// Sets the service's own options on its builder, e.g.
    /// `.service(|s| s.config(config).clock(clock))`. Its event sink is
    /// the server's (log, events stream, metrics): replacing it detaches
    /// them.
    pub fn service(
        mut self,
        f: impl FnOnce(ClusterServiceBuilder) -> ClusterServiceBuilder,
    ) -> Self {
        self.service = f(self.service);
        self
    }

    /// Sends webhook deliveries through `sender` while this replica leads
    /// (default: none; alerts still reach the outbox), counted in the
    /// metrics.
    pub fn webhook_sender(mut self, sender: Arc<dyn WebhookSender>) -> Self {
        self.service = self
            .service
            .webhook_sender(self.metrics.counted_sender(sender));
        self
    }

    /// Replaces the HTTP limits.
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the throttle of failed authentication (default: 20 failures
    /// per peer within 60 s, no trusted proxy).
    pub fn throttle(mut self, config: ThrottleConfig) -> Self {
        self.throttle = config;
        self
    }

    /// Names the backend in `/readyz` (`memory`, `redis`, `postgres`).
    pub fn store_name(mut self, name: impl Into<String>) -> Self {
        self.store_name = name.into();
        self
    }

    /// Uses `token` as the server's shutdown signal (event streams end when
    /// it is cancelled).
    pub fn shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// Serves worker installations (SkyPanelV2's script, the agent binary).
    pub fn install(mut self, install: InstallConfig) -> Self {
        self.install = Some(install);
        self
    }

    /// Serves the listeners over TLS with `tls`'s certificate, checking
    /// workers' client certificates against its CA (default: plain).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Keeps the cluster statistics for `window` on this replica (`serve --stats-cache-sec`; default here: zero, every
    /// request reads the store).
    pub fn stats_cache(mut self, window: Duration) -> Self {
        self.stats_window = window;
        self
    }

    /// Builds the service and the state.
    pub fn build(self) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                service: Arc::new(self.service.build()),
                auth: self.auth,
                throttle: Throttle::new(self.throttle),
                metrics: self.metrics,
                events: self.events,
                limits: self.limits,
                tasks: TaskTracker::new(),
                shutdown: self.shutdown,
                store_name: self.store_name,
                install: self.install,
                tls: self.tls,
                stats_cache: StatsCache::new(self.stats_window),
            }),
        }
    }
}

impl AppState {
    /// Starts building a state over `store`, calling workers through
    /// `client` (timed in the metrics), accepting the credentials of
    /// `auth`.
    pub fn builder(
        store: Arc<dyn Store>,
        client: Arc<dyn WorkerClient>,
        auth: AuthConfig,
    ) -> AppStateBuilder {
        let events = EventHub::default();
        let metrics = Arc::new(Metrics::new());
        let sinks: Vec<Arc<dyn EventSink>> = vec![
            Arc::new(LogSink),
            Arc::new(events.clone()),
            Arc::new(MetricsSink(Arc::clone(&metrics))),
        ];
        let service = ClusterService::builder(store, metrics.timed_client(client))
            .events(Arc::new(FanoutSink(sinks)));
        AppStateBuilder {
            service,
            metrics,
            events,
            auth,
            limits: HttpLimits::default(),
            throttle: ThrottleConfig::default(),
            store_name: "memory".into(),
            shutdown: CancellationToken::new(),
            install: None,
            tls: None,
            stats_window: Duration::ZERO,
        }
    }

    /// The cluster service.
    pub fn service(&self) -> &Arc<ClusterService> {
        &self.inner.service
    }

    /// The accepted credentials.
    pub fn auth(&self) -> &AuthConfig {
        &self.inner.auth
    }

    /// The throttle of failed authentication.
    pub fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The events hub.
    pub fn events(&self) -> &EventHub {
        &self.inner.events
    }

    /// The HTTP limits.
    pub fn limits(&self) -> HttpLimits {
        self.inner.limits
    }

    /// The backend's name.
    pub fn store_name(&self) -> &str {
        &self.inner.store_name
    }

    /// Worker installations, when served.
    pub fn install(&self) -> Option<&InstallConfig> {
        self.inner.install.as_ref()
    }

    /// TLS of the listeners, when configured.
    pub fn tls(&self) -> Option<&Tls> {
        self.inner.tls.as_ref()
    }

    /// This replica's cache of the cluster statistics.
    pub fn stats_cache(&self) -> &StatsCache {
        &self.inner.stats_cache
    }

    /// The shutdown signal.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Work detached from requests (allocations, admin transitions): wait
    /// on it during shutdown with `close()` then `wait()`.
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// Runs `work` on its own task, so that a client that disconnects (or a
    /// request timeout) cannot cancel it halfway, and waits for its result.
    pub(crate) async fn detached<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, vdi_cluster_core::Error>> + Send + 'static,
        T: Send + 'static,
    {
        match self.inner.tasks.spawn(work).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => {
                tracing::error!(error = %e, "detached work failed");
                Err(ApiError::internal())
            }
        }
    }
}
