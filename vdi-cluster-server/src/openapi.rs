//! The OpenAPI 3 document, generated from the handlers' annotations
//! (utoipa) and the bodies' schemas (`vdi-cluster-protocol`), and completed
//! from the [route table](crate::routes::route_table): each operation's
//! summary and security requirement come from the table, so the document
//! cannot disagree with the router about who may call what. It states
//! every constraint the server enforces (patterns, lengths, ranges,
//! required fields, which fields go together), so generated tests can take
//! it as the contract (Schemathesis runs against it in CI, `.ci/run`). The
//! [router](mod@crate::router) builds it once and hands it to the
//! `/api/openapi.json` handler.

use std::collections::HashSet;

use serde_json::{Value, json};
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use vdi_cluster_protocol::cluster::{
    AuditEntryJson, AuditJson, DistributionEntry, DistributionJson, StatsJson, SummaryJson,
    ZoneStatsJson,
};
use vdi_cluster_protocol::events::{EventJson, EventKindJson, ServerSentEvent};
use vdi_cluster_protocol::join::{
    CreateJoinToken, CreatedJoinToken, CredentialReset, InstallScriptRequest, JoinTokenJson,
    JoinTokenList,
};
use vdi_cluster_protocol::node::{NetworkPolicyJson, ProvisionerCheckJson};
use vdi_cluster_protocol::ops::HealthJson;
use vdi_cluster_protocol::page::PageJson;
use vdi_cluster_protocol::reconcile::{
    CounterJson, DriftJson, PassProgressJson, PolicyChangeJson, PolicyJson, ReconcileReportJson,
};
use vdi_cluster_protocol::sessions::{
    AllocateSessionRequest, ConstraintsJson, PrewarmExamRequest, PrewarmFailureJson,
    PrewarmReportJson, PrewarmShareJson, ReleaseJson, SessionJson,
};
use vdi_cluster_protocol::signin::{OperatorSessionJson, SessionsEndedJson};
use vdi_cluster_protocol::webhooks::{
    AttemptJson, CreateWebhook, CreatedWebhook, DeliveryJson, DeliveryList, WebhookJson,
    WebhookList, WebhookPayload,
};
use vdi_cluster_protocol::workers::{
    AdminActionJson, DrainInfoJson, DrainRequest, PatchWorkerRequest, WorkerJson, WorkerList,
    WorkerSessionsJson,
};
use vdi_cluster_protocol::{
    AllocateRequest, AllocateResponse, DeregisterRequest, DescriptionJson, ErrorBody,
    HeartbeatRequest, HeartbeatResponse, HostJson, JOIN_TOKEN_HEADER, JoinResponse, PrewarmRequest,
    PrewarmResponse, RegisterRequest, ReleaseRequest, ReleaseResponse, SessionRef,
    WORKER_TOKEN_HEADER,
};

use vdi_cluster_core::worker::{MAX_TAG_LEN, MAX_TAGS};

use crate::auth::Access;
use crate::routes::{
    HttpMethod, admin, aetherium, capacity, cluster, credentials, exams, heartbeat, install, join,
    ledger, maintenance, ops, rehearsal, route_table, scheduled, session_end, sessions, signin,
    starts, waiting_room, webhooks, workers,
};
use vdi_cluster_protocol::aetherium::{AetheriumWorkerJson, AetheriumWorkerList, VmJson, VmList};
use vdi_cluster_protocol::capacity::{CapacityRequestJson, CapacityRequestList};
use vdi_cluster_protocol::extra_time::{ExtraSeatsJson, StudentExtraJson};
use vdi_cluster_protocol::ledger::{
    DisruptionJson, ExamDisruptionsJson, LostFiguresJson, StudentLostJson,
};
use vdi_cluster_protocol::maintenance::{
    FreezeRefusedJson, FrozenExamJson, MaintenanceWindowJson, MaintenanceWindowsJson,
};
use vdi_cluster_protocol::rehearsal::{RehearsalJson, WorkerCheckJson};
use vdi_cluster_protocol::scheduled::{
    ScheduleDrainRequest, ScheduledDrainJson, ScheduledDrainsJson, WindowChoice,
};
use vdi_cluster_protocol::session_end::{
    ExtensionRefusedJson, PatchSessionRequest, SessionEndJson,
};

/// Name of the bearer-JWT security scheme.
pub const BEARER_SCHEME: &str = "bearerAuth";
/// Name of the worker-token security scheme.
pub const WORKER_TOKEN_SCHEME: &str = "workerToken";
/// Name of the join-token security scheme.
pub const JOIN_TOKEN_SCHEME: &str = "joinToken";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vdi-cluster control plane",
        description = "Worker registry and session scheduler of a remote-desktop exam platform. \
                       Errors are {\"error\", \"message\", \"code\"} (plus \"field\" for bad input).",
    ),
    paths(
        heartbeat::heartbeat, heartbeat::register, heartbeat::deregister,
        workers::list, workers::summary, workers::healthy, workers::stats, workers::reconcile,
        workers::detail,
        admin::patch, workers::remove, workers::upgrade, workers::sessions, admin::drain_info,
        admin::drain, admin::activate,
        maintenance::worker_windows, maintenance::group_windows,
        scheduled::schedule, scheduled::worker_list, scheduled::cancel, scheduled::fleet_list,
        join::join, join::create, join::list, join::revoke, install::script, install::agent,
        credentials::rotate, credentials::reset, credentials::revoke,
        sessions::allocate, sessions::get, session_end::patch, sessions::release, sessions::prewarm,
        exams::book, exams::calendar, exams::detail, exams::patch, exams::cancel,
        waiting_room::queue, starts::worker, starts::exam, ledger::exam_disruptions, capacity::list,
        rehearsal::run, rehearsal::report, rehearsal::recheck,
        cluster::stats, cluster::distribution, cluster::audit, cluster::events,
        aetherium::vms, aetherium::vm, aetherium::workers, aetherium::worker,
        webhooks::create, webhooks::list, webhooks::delete, webhooks::deliveries,
        webhooks::retry,
        signin::sign_in, signin::current, signin::sign_out, signin::sign_out_everywhere,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(
        ErrorBody, PageJson, HeartbeatRequest, HeartbeatResponse, RegisterRequest, DescriptionJson,
        HostJson, DeregisterRequest,
        SessionRef, AllocateRequest, AllocateResponse, ReleaseRequest, ReleaseResponse,
        PrewarmRequest, PrewarmResponse, JoinResponse, NetworkPolicyJson,
        WorkerJson, WorkerList, WorkerSessionsJson, AdminActionJson, DrainInfoJson,
        PatchWorkerRequest, DrainRequest,
        SessionJson, ReleaseJson, AllocateSessionRequest, ConstraintsJson, PrewarmExamRequest,
        PrewarmReportJson, PrewarmShareJson, PrewarmFailureJson,
        SummaryJson, StatsJson, ZoneStatsJson, DistributionEntry, DistributionJson,
        ReconcileReportJson, PassProgressJson, PolicyChangeJson, PolicyJson, DriftJson, CounterJson,
        AuditJson, AuditEntryJson, EventJson, EventKindJson, ServerSentEvent,
        OperatorSessionJson, SessionsEndedJson, HealthJson, CreateJoinToken, InstallScriptRequest, JoinTokenJson, CreatedJoinToken, JoinTokenList, CredentialReset,
        CreateWebhook, CreatedWebhook, WebhookJson, WebhookList, DeliveryJson, DeliveryList,
        AttemptJson, WebhookPayload,
        FreezeRefusedJson, FrozenExamJson, MaintenanceWindowsJson, MaintenanceWindowJson,
        RehearsalJson, WorkerCheckJson, ProvisionerCheckJson,
        CapacityRequestList, CapacityRequestJson,
        ScheduleDrainRequest, ScheduledDrainJson, ScheduledDrainsJson, WindowChoice,
        VmJson, VmList, AetheriumWorkerJson, AetheriumWorkerList,
        PatchSessionRequest, SessionEndJson, ExtensionRefusedJson, StudentExtraJson, ExtraSeatsJson,
        DisruptionJson, StudentLostJson, LostFiguresJson, ExamDisruptionsJson,
    )),
    modifiers(&FromRouteTable),
    tags(
        (name = "workers", description = "Worker registry, heartbeats, drain (the exam platform, minicloud, Aetherium)"),
        (name = "sessions", description = "The session API of the exam application"),
        (name = "cluster", description = "Cluster statistics, audit, events (as Aetherium)"),
        (name = "aetherium", description = "Aetherium's resource view in its snake_case spelling: sessions and prewarmed machines as VMs, workers' figures"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "webhooks", description = "Alerts by webhook, signed per Standard Webhooks"),
        (name = "operators' page", description = "Signing in to the page served at /admin"),
    )
)]
struct ApiDoc;

/// Adds the security schemes, and each operation's summary and security
/// requirement from the route table.
struct FromRouteTable;

fn operation(item: &mut PathItem, method: HttpMethod) -> Option<&mut Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
    }
}

fn requirement(name: &str) -> SecurityRequirement {
    SecurityRequirement::new(name, Vec::<String>::new())
}

fn security(access: Access) -> Option<Vec<SecurityRequirement>> {
    match access {
        Access::Public => None,
        Access::Worker => Some(vec![requirement(WORKER_TOKEN_SCHEME)]),
        Access::OwnWorker => Some(vec![
            requirement(WORKER_TOKEN_SCHEME),
            requirement(BEARER_SCHEME),
        ]),
        Access::Operator | Access::Admin | Access::Session | Access::Service => {
            Some(vec![requirement(BEARER_SCHEME)])
        }
        Access::Join => Some(vec![requirement(JOIN_TOKEN_SCHEME)]),
    }
}

impl Modify for FromRouteTable {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT signed with JWT_SECRET: sub, exp, role or roles (ADMIN, PROCTOR, STUDENT)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            WORKER_TOKEN_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                WORKER_TOKEN_HEADER,
                "The worker's own credential (from joining), or WORKER_HEARTBEAT_TOKEN (required only when configured)",
            ))),
        );
        components.add_security_scheme(
            JOIN_TOKEN_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                JOIN_TOKEN_HEADER,
                "A join token created by an admin (POST /api/vdi/join-tokens)",
            ))),
        );
        let mut operation_ids = HashSet::new();
        for route in route_table() {
            let Some(item) = openapi.paths.paths.get_mut(route.path) else {
                continue;
            };
            let Some(op) = operation(item, route.method) else {
                continue;
            };
            // A handler serving several methods of one path (the drain's
            // `PUT` form) documents an operation for each, told apart by id.
            if let Some(id) = op.operation_id.as_mut()
                && !operation_ids.insert((route.path, id.clone()))
            {
                let method = route.method.method().as_str().to_ascii_lowercase();
                *id = format!("{id}_{method}");
            }
            op.summary = Some(route.summary.to_owned());
            let access = format!("Access: {}.", route.access.describe());
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{access}"),
                _ => access,
            });
            op.security = security(route.access);
        }
    }
}

/// The OpenAPI document as utoipa builds it from the derives and the
/// route table (what is served is [`document_value`]).
pub fn document() -> OpenApiDocument {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The OpenAPI document as served: [`document`] with the constraints the
/// derives cannot state ([`refine`]).
pub fn document_value() -> Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_else(|_| json!({}));
    refine(&mut doc);
    doc
}

/// The OpenAPI document as pretty JSON.
pub fn document_json() -> String {
    serde_json::to_string_pretty(&document_value()).unwrap_or_else(|_| "{}".to_owned())
}

/// A zone, label key or value, or capability: 1 to 64 characters without
/// control characters (core's `worker::MAX_TAG_LEN`).
fn tag_schema() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_TAG_LEN,
           "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"})
}

/// Whether `name` is present and not null.
fn given(name: &str, schema: Value) -> Value {
    json!({"required": [name], "properties": {name: schema}})
}

/// Adds what the server enforces and the derives cannot say: the shape of
/// labels and capabilities, and which admin fields go together.
fn refine(doc: &mut Value) {
    crate::exam_schemas::refine(doc);
    let schemas = &mut doc["components"]["schemas"];
    for name in ["DescriptionJson", "ConstraintsJson"] {
        let props = &mut schemas[name]["properties"];
        if !props.is_object() {
            continue;
        }
        let labels = json!({
            "type": "object",
            "propertyNames": tag_schema(),
            "additionalProperties": tag_schema(),
            "maxProperties": MAX_TAGS,
        });
        let capabilities = json!({"type": "array", "items": tag_schema(), "maxItems": MAX_TAGS});
        for (field, schema) in [("labels", labels), ("capabilities", capabilities)] {
            let description = props[field]["description"].clone();
            props[field] = schema;
            props[field]["description"] = description;
        }
        let description = props["zone"]["description"].clone();
        props["zone"] =
            json!({"oneOf": [tag_schema(), {"type": "null"}], "description": description});
    }
    // Every gated operation may answer 429 (failed authentication from
    // the peer), every one with a body 413 (over the body limit).
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    };
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            let gated = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let has_body = op.get("requestBody").is_some();
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            if gated {
                responses.insert(
                    "429".into(),
                    error("Too many failed authentications from this peer (Retry-After)"),
                );
            }
            if has_body {
                responses.insert("413".into(), error("Body over the request body limit"));
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    // PATCH: exactly one of isDraining and isEnabled; force only with
    // isEnabled false, or with isDraining true and a reason (past the
    // change freeze); drainDeadlineSec only with isDraining true.
    let patch = &mut schemas["PatchWorkerRequest"];
    if patch.is_object() {
        let boolean = json!({"type": "boolean"});
        let integer = json!({"type": "integer"});
        patch["oneOf"] = json!([
            given("isDraining", boolean.clone()),
            given("isEnabled", boolean.clone()),
        ]);
        let forced_drain = json!({"allOf": [
            given("force", json!({"const": true})),
            given("isDraining", json!({"const": true})),
        ]});
        patch["allOf"] = json!([
            {"if": given("force", boolean), "then": {"anyOf": [
                given("isEnabled", json!({"const": false})),
                given("isDraining", json!({"const": true})),
            ]}},
            {"if": forced_drain, "then": given("reason", json!({"type": "string"}))},
            {"if": given("drainDeadlineSec", integer), "then": given("isDraining", json!({"const": true}))},
        ]);
    }
    // A drain forced past the change freeze gives its reason.
    let drain = &mut schemas["DrainRequest"];
    if drain.is_object() {
        drain["if"] = given("force", json!({"const": true}));
        drain["then"] = given("reason", json!({"type": "string"}));
    }
}
