//! Capacity on schedule, read at each scrape from the stored capacity
//! requests — so every replica exports the same figures, whichever one
//! leads.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vdi_capacity_requests` | gauge, read at scrape | `state`: `pending`, `requested`, `joined`, `missing`, `releasing`, `released` (every state, zeros included) |
//! | `vdi_capacity_request_slots` | gauge, read at scrape: slots asked of the scale hook | `state`, as above |
//!
//! `vdi_capacity_requests{state="missing"}` above 0 is a request whose
//! deadline (its first exam's prewarm lead) passed before the workers the
//! hook named had joined: the alert `VdiCapacityMissing`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vdi_cluster_core::ClusterService;
use vdi_cluster_core::scale::CapacityState;

/// Every state, in the order of a request's life.
const STATES: [CapacityState; 6] = [
    CapacityState::Pending,
    CapacityState::Requested,
    CapacityState::Joined,
    CapacityState::Missing,
    CapacityState::Releasing,
    CapacityState::Released,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

/// The capacity series.
#[derive(Debug, Clone, Default)]
pub(super) struct CapacitySeries {
    requests: Family<StateLabel, Gauge>,
    slots: Family<StateLabel, Gauge>,
}

impl CapacitySeries {
    /// Registers the series in `registry` (prefixed `vdi_`), every state
    /// at zero.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let series = Self::default();
        registry.register(
            "capacity_requests",
            "Capacity requests of the scale hook by state",
            series.requests.clone(),
        );
        registry.register(
            "capacity_request_slots",
            "Slots asked of the scale hook by the requests' state",
            series.slots.clone(),
        );
        series.set(&[]);
        series
    }

    /// Reads the stored requests; leaves the figures as they were when the
    /// backend cannot be read (`vdi_backend_up` says so).
    pub(super) async fn refresh(&self, service: &ClusterService) {
        match service.operations().capacity_requests().await {
            Ok(requests) => {
                let figures: Vec<(CapacityState, u32)> =
                    requests.iter().map(|r| (r.state, r.slots)).collect();
                self.set(&figures);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics scrape could not read the capacity requests");
            }
        }
    }

    /// Sets every state's count and slots from `(state, slots)` per request.
    fn set(&self, requests: &[(CapacityState, u32)]) {
        for state in STATES {
            let of_state = requests.iter().filter(|(s, _)| *s == state);
            let label = StateLabel {
                state: state.as_str(),
            };
            let count = of_state.clone().count();
            let slots: u64 = of_state.map(|(_, n)| u64::from(*n)).sum();
            self.requests
                .get_or_create(&label)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
            self.slots
                .get_or_create(&label)
                .set(i64::try_from(slots).unwrap_or(i64::MAX));
        }
    }
}
