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
