//! What the OpenAPI document says of the exam routes beyond their derives:
//! ids, RFC 3339 instants (from 1971, so that no offset reaches before
//! 1970), sizes and durations, exactly as core validates them.
//!
//! Three rules of core cannot be written in a schema: `endsAt` after
//! `startsAt`, an exam at most a day long, and no more students with
//! extra time than the exam has. Bodies that break them are
//! schema-valid and answered 422 naming the field; the document says so
//! in each operation's description.

use serde_json::{Value, json};
use vdi_cluster_core::exam::{MAX_LEAD_OR_TEARDOWN_SEC, MAX_NAME_LEN, MAX_STUDENTS};

use crate::path_params::ID_PATTERN;

/// An RFC 3339 date-time with seconds and a zone, from 1971.
const DATE_TIME_PATTERN: &str = "^(197[1-9]|19[89][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// Why a schema-valid exam may still be refused.
const CROSS_FIELD: &str = "A body the schema admits is still refused (422, naming the field) \
when `endsAt` is not after `startsAt`, the exam is longer than a day, or its `extensions` or \
`extraTime` count more students than `students` (or name a student twice).";

/// An exam id, as the session API's ids.
fn id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": ID_PATTERN})
}

fn instant() -> Value {
    json!({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN})
}

fn seconds() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": MAX_LEAD_OR_TEARDOWN_SEC})
}

fn name() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN,
           "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]+$"})
}

fn students() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": MAX_STUDENTS})
}

/// Replaces the schema of `field` in `props`, keeping its description;
/// `nullable` lets `null` through (PATCH: "unchanged").
fn set(props: &mut Value, field: &str, schema: Value, nullable: bool) {
    if !props.is_object() {
        return;
    }
    let description = props[field]["description"].clone();
    props[field] = if nullable {
        json!({"oneOf": [schema, {"type": "null"}]})
    } else {
        schema
    };
    if !description.is_null() {
        props[field]["description"] = description;
    }
}

/// Refines the exam bodies, path and query parameters of `doc`.
pub(crate) fn refine(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    for (body, nullable) in [("BookExamRequest", false), ("PatchExamRequest", true)] {
        let props = &mut schemas[body]["properties"];
        if body == "BookExamRequest" {
            set(props, "examId", id(), false);
        }
        set(props, "name", name(), nullable);
        set(props, "startsAt", instant(), nullable);
        set(props, "endsAt", instant(), nullable);
        set(props, "students", students(), nullable);
        set(props, "teardownSec", seconds(), true);
    }
    set(
        &mut schemas["PatchSessionRequest"]["properties"],
        "endsAt",
        instant(),
        true,
    );
    let prewarm = &mut schemas["PrewarmJson"]["properties"];
    set(prewarm, "leadSec", seconds(), true);
    set(
        prewarm,
        "percent",
        json!({"type": "integer", "minimum": 0, "maximum": 100}),
        true,
    );
    set(
        prewarm,
        "count",
        json!({"type": "integer", "minimum": 0, "maximum": MAX_STUDENTS}),
        true,
    );
    schemas["PrewarmJson"]["not"] = json!({"required": ["count", "percent"],
        "properties": {"count": {"type": "integer"}, "percent": {"type": "integer"}}});

    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/api/vdi/exams") || path.ends_with("/prewarm") {
            continue;
        }
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            refine_operation(method, op);
        }
    }
}

fn refine_operation(method: &str, op: &mut Value) {
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            match p["name"].as_str() {
                Some("examId") => p["schema"] = id(),
                Some("from" | "to") => {
                    p["schema"] = json!({"oneOf": [instant(), {"type": "null"}]})
                }
                _ => {}
            }
        }
    }
    let has_params = op.get("parameters").is_some_and(Value::is_array);
    if method == "get" && has_params && op["responses"]["422"].is_null() {
        op["responses"]["422"] = json!({
            "description": "`from` or `to` is not an RFC 3339 date-time",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        });
    }
    if matches!(method, "post" | "patch") {
        let description = op["description"].as_str().unwrap_or_default().to_owned();
        op["description"] = json!(format!("{description}\n\n{CROSS_FIELD}"));
    }
}
