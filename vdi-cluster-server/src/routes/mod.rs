//! The route table and the handlers, one module per audience.
//!
//! [`route_table`] lists every route once, with its method, path and the
//! credential it requires ([`Access`]). The [router](mod@crate::router) is built
//! from it (each route gets the credential check for its access), the
//! [OpenAPI document](crate::openapi)'s security is derived from it, and the
//! tests generate the auth matrix from it — so a route cannot be added
//! without being authorised, documented and tested.
//!
//! Handlers are thin: extract, call core's `ClusterService`, answer a body
//! of `vdi-cluster-protocol`. No handler serializes a core type.
//!
//! * `heartbeat` — the worker routes: heartbeat, register, deregister.
//! * `workers` — the admin page's views: list, summary, healthy, detail,
//!   sessions; reconcile; delete.
//! * `admin` — admin transitions: `PATCH`, drain, activate, what blocks a
//!   drain.
//! * `join` — join tokens and joining; `install` — SkyPanelV2's installation
//!   script and the agent binary it downloads.
//! * `maintenance` — maintenance windows; `scheduled` — drains scheduled
//!   for a time (at a window's start), listed and cancelled.
//! * `credentials` — a worker's own credential: rotate, revoke, reset.
//! * `sessions` — the exam application's session API and prewarm;
//!   `session_end` — a student's own end, changed by an operator.
//! * `exams` — exams booked with admission control; `waiting_room` — an
//!   exam's queue of students waiting for a slot; `starts` — paced
//!   starts, per worker and per exam; `rehearsal` — an exam's rehearsal
//!   and its go / no-go report; `capacity` — what the
//!   scale hook was asked for.
//! * `cluster` — statistics, distribution, audit, events.
//! * `aetherium` — Aetherium's resource view: sessions and prewarmed
//!   machines as VMs, workers under Aetherium's field names.
//! * `ops` — health, readiness, metrics, the OpenAPI document.
//! * `webhooks` — alerts by webhook: endpoints, deliveries, retries.
//! * `signin` — the operators' page: sign in (JWT → stored session, its id
//!   in a cookie), the session, sign out, sign out everywhere.
//! * `reserved` — worker codes the API's paths reserve.
//! * `roles` — the roles table (routes × credentials) of the README.

pub(crate) mod admin;
pub(crate) mod aetherium;
pub(crate) mod capacity;
pub(crate) mod cluster;
pub(crate) mod credentials;
pub(crate) mod exams;
mod force;
pub(crate) mod heartbeat;
pub(crate) mod install;
pub(crate) mod join;
pub(crate) mod ledger;
pub(crate) mod maintenance;
pub(crate) mod ops;
pub(crate) mod rehearsal;
mod reserved;
mod roles;
pub(crate) mod scheduled;
pub(crate) mod session_end;
pub(crate) mod sessions;
pub(crate) mod signin;
pub(crate) mod starts;
pub(crate) mod waiting_room;
pub(crate) mod webhooks;
pub(crate) mod workers;

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::auth::Access;
use crate::state::AppState;

pub use roles::{ROLES_TABLE_END, ROLES_TABLE_START, roles_table};

/// An HTTP method used by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// As an [`http::Method`](Method).
    pub fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Put => Method::PUT,
            Self::Patch => Method::PATCH,
            Self::Delete => Method::DELETE,
        }
    }

    pub(crate) fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Patch => MethodFilter::PATCH,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// Method.
    pub method: HttpMethod,
    /// Path, with `{param}` segments as in OpenAPI.
    pub path: &'static str,
    /// Credential required.
    pub access: Access,
    /// One line for humans (also the OpenAPI summary).
    pub summary: &'static str,
    pub(crate) handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

macro_rules! routes {
    ($($method:ident $path:literal $access:ident $handler:path => $summary:literal;)*) => {
        &[$(RouteSpec {
            method: HttpMethod::$method,
            path: $path,
            access: Access::$access,
            summary: $summary,
            handler: |filter| on(filter, $handler),
        },)*]
    };
}

static ROUTES: &[RouteSpec] = routes! {
    Post "/api/vdi/workers/heartbeat" Worker heartbeat::heartbeat
        => "A worker's heartbeat: capacity, sessions, health (the exam platform's)";
    Post "/api/vdi/workers/register" Worker heartbeat::register
        => "Register a worker ahead of its first heartbeat (as minicloud)";
    Post "/api/vdi/workers/{code}/deregister" OwnWorker heartbeat::deregister
        => "A worker leaving cleanly: offline at once (as minicloud)";
    Post "/api/vdi/workers/join" Join join::join
        => "Register with a join token; answers the worker's own credential (SkyPanelV2, minicloud)";
    Post "/api/vdi/workers/install-script" Admin install::script
        => "A worker installation script bound to a fresh single-use join token (SkyPanelV2's)";
    Get "/api/vdi/agent/vdi-cluster" Public install::agent
        => "The agent binary the installation script downloads (this control plane's build)";
    Post "/api/vdi/join-tokens" Admin join::create
        => "Create a join token (shown once, stored hashed, with an expiry)";
    Get "/api/vdi/join-tokens" Admin join::list
        => "List join tokens (never their secrets)";
    Delete "/api/vdi/join-tokens/{id}" Admin join::revoke
        => "Revoke a join token";
    Post "/api/vdi/workers/{code}/credential/rotate" Worker credentials::rotate
        => "A worker, with its own credential, gets a new one (the old one overlaps briefly)";
    Post "/api/vdi/workers/{code}/credential/reset" Admin credentials::reset
        => "Reset a worker's credential; answers a join token bound to it (shown once)";
    Delete "/api/vdi/workers/{code}/credential" Admin credentials::revoke
        => "Revoke a worker's own credential: refused from its next request";
    Get "/api/vdi/workers" Operator workers::list
        => "List workers, filtered by status, zone or label=key:value";
    Get "/api/vdi/workers/summary" Operator workers::summary
        => "Workers healthy/total, slots available/max, active sessions (the exam platform's)";
    Get "/api/vdi/workers/healthy" Operator workers::healthy
        => "Workers heartbeating within the TTL (minicloud's)";
    Get "/api/vdi/workers/stats" Operator workers::stats
        => "Cluster statistics under minicloud's name (as /api/vdi/cluster/stats)";
    Post "/api/vdi/workers/reconcile" Operator workers::reconcile
        => "Reconcile now: stale dispatches, stuck reservations, counter drift (the exam platform's)";
    Get "/api/vdi/workers/{code}" Operator workers::detail
        => "One worker (as Aetherium)";
    Patch "/api/vdi/workers/{code}" Operator admin::patch
        => "Drain, activate, disable or enable a worker (the exam platform's); checked by the change freeze";
    Delete "/api/vdi/workers/{code}" Admin workers::remove
        => "Delete a worker's record (refused while sessions remain, or by the change freeze)";
    Post "/api/vdi/workers/{code}/upgrade" Admin workers::upgrade
        => "Clear an upgrade of the worker's agent with the change freeze (asked by install-worker.sh --upgrade)";
    Get "/api/vdi/workers/{code}/maintenance-windows" Operator maintenance::worker_windows
        => "When this worker can be out for a duration without any booked exam fitting worse";
    Get "/api/vdi/maintenance-windows" Operator maintenance::group_windows
        => "When a group of workers can be out together for a duration";
    Post "/api/vdi/workers/{code}/scheduled-drains" Operator scheduled::schedule
        => "Schedule a drain at a time or at the start of the worker's next maintenance window";
    Get "/api/vdi/workers/{code}/scheduled-drains" Operator scheduled::worker_list
        => "A worker's open scheduled drains, by time";
    Delete "/api/vdi/workers/{code}/scheduled-drains/{id}" Operator scheduled::cancel
        => "Cancel a pending scheduled drain";
    Get "/api/vdi/scheduled-drains" Operator scheduled::fleet_list
        => "Every open scheduled drain of the fleet, by time";
    Get "/api/vdi/workers/{code}/starts" Operator starts::worker
        => "A worker's start pacing: configured and adapted start concurrency, starts in flight and waiting, start time p50/p95";
    Get "/api/vdi/workers/{code}/sessions" Operator workers::sessions
        => "A worker's sessions (as Aetherium)";
    Get "/api/vdi/workers/{code}/drain" Operator admin::drain_info
        => "What still blocks a worker's drain";
    Post "/api/vdi/workers/{code}/drain" Operator admin::drain
        => "Drain a worker: keep its sessions, take no new ones (as Aetherium)";
    Put "/api/vdi/workers/{code}/drain" Operator admin::drain
        => "Drain a worker (idempotent PUT form)";
    Post "/api/vdi/workers/{code}/activate" Operator admin::activate
        => "Return a draining, drained or disabled worker to service (as Aetherium)";
    Post "/api/vdi/sessions" Session sessions::allocate
        => "Place a student's session (or return the one it has)";
    Get "/api/vdi/sessions/{examId}/{userId}" Session sessions::get
        => "Where a student's session is";
    Delete "/api/vdi/sessions/{examId}/{userId}" Session sessions::release
        => "Release a student's session (on submission); idempotent";
    Post "/api/vdi/exams/{examId}/prewarm" Service sessions::prewarm
        => "Prewarm machines for an exam, split across workers";
    Post "/api/vdi/exams" Admin exams::book
        => "Book an exam: admitted only if it fits the capacity over its whole window";
    Get "/api/vdi/exams" Operator exams::calendar
        => "The exam calendar, each exam with fits / at risk";
    Get "/api/vdi/exams/{examId}" Operator exams::detail
        => "One exam and its figures";
    Patch "/api/vdi/exams/{examId}" Admin exams::patch
        => "Change an exam: admission re-checked";
    Patch "/api/vdi/sessions/{examId}/{userId}" Operator session_end::patch
        => "Give a student their own end time (extendSec or endsAt, with a reason): admitted like a booking, audited";
    Delete "/api/vdi/exams/{examId}" Admin exams::cancel
        => "Cancel an exam";
    Get "/api/vdi/exams/{examId}/queue" Operator waiting_room::queue
        => "Who waits in an exam's queue, in order, with positions and waiting times";
    Get "/api/vdi/exams/{examId}/starts" Operator starts::exam
        => "An exam's starts: students starting, p50/p95 wait, each worker's start rate";
    Post "/api/vdi/exams/{examId}/rehearsal" Admin rehearsal::run
        => "Rehearse an exam: one test desktop per eligible worker; answers the go / no-go report";
    Get "/api/vdi/exams/{examId}/rehearsal" Operator rehearsal::report
        => "An exam's go / no-go report: each worker's check, the failing ones and whether the exam fits without them";
    Post "/api/vdi/exams/{examId}/rehearsal/workers/{code}" Admin rehearsal::recheck
        => "Re-check one worker for an exam's rehearsal: a failing worker that passes is back in the exam";
    Get "/api/vdi/exams/{examId}/disruptions" Operator ledger::exam_disruptions
        => "Every student of an exam with lost time (the disruption ledger), as JSON or CSV";
    Get "/api/vdi/capacity-requests" Operator capacity::list
        => "Workers asked of the scale hook for booked exams: requested, joined, missing, released";
    Get "/api/vdi/cluster/stats" Operator cluster::stats
        => "Cluster statistics with per-status and per-zone breakdowns (as Aetherium)";
    Get "/api/vdi/cluster/distribution" Operator cluster::distribution
        => "Sessions per worker (as Aetherium)";
    Get "/api/vdi/vms" Operator aetherium::vms
        => "Every session and prewarmed machine as a VM (as Aetherium, in its snake_case spelling)";
    Get "/api/vdi/vms/{id}" Operator aetherium::vm
        => "One session or prewarmed machine as a VM (as Aetherium)";
    Get "/api/vdi/aetherium/workers" Operator aetherium::workers
        => "Workers under Aetherium's field names (cpu_usage_percent, vm_count, max_vms, last_seen, …)";
    Get "/api/vdi/aetherium/workers/{code}" Operator aetherium::worker
        => "One worker under Aetherium's field names";
    Get "/api/vdi/audit" Admin cluster::audit
        => "Audit trail of admin actions, newest first";
    Get "/api/vdi/events" Operator cluster::events
        => "Cluster events as server-sent events";
    Post "/api/vdi/webhooks" Admin webhooks::create
        => "Add a webhook endpoint for alerts (its signing secret is shown once)";
    Get "/api/vdi/webhooks" Admin webhooks::list
        => "List webhook endpoints (never their secrets)";
    Delete "/api/vdi/webhooks/{id}" Admin webhooks::delete
        => "Delete a webhook endpoint";
    Get "/api/vdi/webhooks/{id}/deliveries" Admin webhooks::deliveries
        => "A webhook endpoint's deliveries with every attempt, newest first";
    Post "/api/vdi/webhooks/{id}/deliveries/{deliveryId}/retry" Admin webhooks::retry
        => "Retry a failed webhook delivery now";
    Post "/api/vdi/auth/session" Operator signin::sign_in
        => "Sign in to the operators' page: a session stored in the backend, its id in an HttpOnly cookie";
    Get "/api/vdi/auth/session" Operator signin::current
        => "The signed-in operator and the session's CSRF token";
    Delete "/api/vdi/auth/session" Public signin::sign_out
        => "Sign out of the operators' page: ends the stored session, clears the cookie";
    Delete "/api/vdi/auth/sessions" Admin signin::sign_out_everywhere
        => "Sign out everywhere: ends every operators' page session";
    Get "/healthz" Public ops::healthz
        => "Liveness";
    Get "/readyz" Public ops::readyz
        => "Readiness: the storage backend answers";
    Get "/metrics" Public ops::metrics
        => "Prometheus metrics";
    Get "/api/openapi.json" Public ops::openapi
        => "This API's OpenAPI 3 document";
};

/// Every route of the API.
pub fn route_table() -> &'static [RouteSpec] {
    ROUTES
}

/// Worker codes that collide with a fixed path under `/api/vdi/workers/`
/// (`summary`, `healthy`, …): heartbeats and registrations using them are
/// refused, since their worker could never be addressed.
pub fn reserved_worker_codes() -> impl Iterator<Item = &'static str> {
    ROUTES.iter().filter_map(|r| {
        let rest = r.path.strip_prefix("/api/vdi/workers/")?;
        (!rest.contains('/') && !rest.starts_with('{')).then_some(rest)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_route_is_unique() {
        let mut seen = HashSet::new();
        for r in route_table() {
            assert!(seen.insert((r.method, r.path)), "{:?} {}", r.method, r.path);
        }
    }

    #[test]
    fn the_readme_lists_every_route() {
        let readme = include_str!("../../README.md");
        for r in route_table() {
            let line = format!("`{} {}`", r.method.method(), r.path);
            assert!(readme.contains(&line), "README lacks {line}");
        }
    }

    #[test]
    fn reserved_codes() {
        // The handlers check against a fixed list (they cannot read the
        // table that names them): it must be exactly the table's fixed
        // segments under /api/vdi/workers/ (heartbeat, register, join,
        // summary, healthy, reconcile).
        let mut derived: Vec<_> = reserved_worker_codes().collect();
        let mut fixed = reserved::RESERVED_WORKER_CODES.to_vec();
        derived.sort_unstable();
        fixed.sort_unstable();
        assert_eq!(derived, fixed);
        assert_eq!(fixed.len(), 8);
    }
}
