//! The OpenAPI document parses as OpenAPI 3, lists every route of the route
//! table with the table's security, and nothing else; every `$ref`
//! resolves.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use vdi_cluster_server::auth::Access;
use vdi_cluster_server::openapi::{BEARER_SCHEME, JOIN_TOKEN_SCHEME, WORKER_TOKEN_SCHEME};
use vdi_cluster_server::route_table;

use crate::common::{Cred, Setup, TestServer};

fn refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let (true, Some(r)) = (k == "$ref", v.as_str()) {
                    out.insert(r.to_owned());
                }
                refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_is_valid_and_complete() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let r = s
        .send(Method::GET, "/api/openapi.json", &Cred::None, None)
        .await;
    assert_eq!(r.status, 200);

    let spec = oas3::from_json(&r.text).expect("parses as OpenAPI 3");
    let version = spec.validate_version().expect("an OpenAPI 3.x version");
    assert_eq!(version.major, 3);

    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.to_string(), path))
        .collect();
    let table: BTreeSet<(String, String)> = route_table()
        .iter()
        .map(|r| (r.method.method().to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, table, "the document and the route table differ");

    for route in route_table() {
        let method = route.method.method();
        let (_, _, op) = spec
            .operations()
            .find(|(p, m, _)| p == route.path && *m == method)
            .unwrap();
        assert_eq!(op.summary.as_deref(), Some(route.summary));
        let schemes: BTreeSet<String> = op
            .security
            .iter()
            .flat_map(|req| req.0.keys().cloned())
            .collect();
        let want: BTreeSet<String> = match route.access {
            Access::Public => BTreeSet::new(),
            Access::Worker => [WORKER_TOKEN_SCHEME.to_owned()].into(),
            Access::OwnWorker => [WORKER_TOKEN_SCHEME.to_owned(), BEARER_SCHEME.to_owned()].into(),
            Access::Operator | Access::Admin | Access::Session | Access::Service => {
                [BEARER_SCHEME.to_owned()].into()
            }
            Access::Join => [JOIN_TOKEN_SCHEME.to_owned()].into(),
        };
        assert_eq!(schemes, want, "{method} {}", route.path);
        assert!(!op.responses(&spec).is_empty(), "{method} {}", route.path);
    }

    let mut all = BTreeSet::new();
    refs(&r.json, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
        assert!(
            r.json["components"]["schemas"].get(name).is_some(),
            "{reference} does not resolve"
        );
    }
}

#[tokio::test]
async fn the_document_states_the_constraints_the_server_enforces() {
    let (setup, _sim) = Setup::memory();
    let s = TestServer::start(setup).await;
    let doc = s.get("/api/openapi.json").await.json;
    let schemas = &doc["components"]["schemas"];
    // A property, also where a flattened struct puts it (under allOf).
    let prop = |schema: &str, field: &str| {
        let s = &schemas[schema];
        std::iter::once(s)
            .chain(s["allOf"].as_array().into_iter().flatten())
            .map(|part| part["properties"][field].clone())
            .find(|p| !p.is_null())
            .unwrap_or(Value::Null)
    };
    assert_eq!(prop("HeartbeatRequest", "code")["maxLength"], 64);
    assert!(prop("HeartbeatRequest", "code")["pattern"].is_string());
    assert!(prop("DescriptionJson", "apiBaseUrl")["pattern"].is_string());
    assert_eq!(prop("DrainRequest", "deadlineSec")["maximum"], 604_800);
    assert_eq!(prop("PatchWorkerRequest", "drainDeadlineSec")["minimum"], 1);
    assert_eq!(prop("CreateJoinToken", "maxUses")["maximum"], 1000);
    assert_eq!(prop("CreateJoinToken", "ttlSec")["maximum"], 2_592_000);
    assert_eq!(prop("PrewarmExamRequest", "count")["maximum"], 100_000);
    assert_eq!(prop("AllocateSessionRequest", "examId")["maxLength"], 128);
    assert!(schemas["PatchWorkerRequest"]["oneOf"].is_array());
    let audit = &doc["paths"]["/api/vdi/audit"]["get"];
    let limit = audit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["maximum"], 1000);
    assert!(audit["responses"]["429"].is_object());
    let code = doc["paths"]["/api/vdi/workers/{code}"]["get"]["parameters"][0].clone();
    assert_eq!(code["schema"]["maxLength"], 64, "{code}");
    // Optional bodies may be null: the server takes null as no body.
    let r = s
        .send(
            Method::POST,
            "/api/vdi/join-tokens",
            &Cred::Admin,
            Some(&serde_json::Value::Null),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}
