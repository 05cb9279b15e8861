//! How request bodies and query strings are read: strictly, with errors
//! that name the offending field (`totalMemoryMb: invalid value: integer
//! -1, expected u64`). Both programs — the control plane and the node
//! agent — parse every body through here, so a malformed request gets the
//! same 400 on either side.

use serde::de::DeserializeOwned;
use vdi_cluster_core::ValidationError;

use crate::unique_keys::{integral, is_plain, parse_unique};

/// Whether a `content-type` value can carry a JSON body: JSON itself, and
/// the two types plain clients send a JSON body with by default (`curl -d`
/// sends form-urlencoded). The body is parsed as JSON either way.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/x-www-form-urlencoded"
        || essence == "text/plain"
}

/// Prefix of the errors [`keyed`] reports.
const KEYED_PREFIX: &str = "field `";

/// Deserializes one field's value, naming the field in the error
/// (``field `labels`: invalid type: …``). For fields of a
/// `#[serde(flatten)]`ed struct, whose values serde reads from a buffer
/// where the error's path is lost; [`parse_json`] reads the name back.
pub fn keyed<'de, T, D>(field: &str, deserializer: D) -> Result<T, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(deserializer)
        .map_err(|e| serde::de::Error::custom(format!("{KEYED_PREFIX}{field}`: {e}")))
}

/// Pulls the field name out of serde's "missing field `x`" / "unknown
/// field `x`" messages, and out of [`keyed`]'s.
fn quoted_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))
        .or_else(|| message.strip_prefix(KEYED_PREFIX))?;
    rest.split('`').next()
}

/// The field an error is about: the error's path, completed with the
/// field quoted in "missing field" messages (whose path is the parent).
fn field_of(path: &str, message: &str, root: &str) -> String {
    match (quoted_field(message), path) {
        (Some(name), ".") => name.to_owned(),
        (Some(name), p) if p == name || p.ends_with(&format!(".{name}")) => p.to_owned(),
        (Some(name), p) => format!("{p}.{name}"),
        (None, ".") => root.to_owned(),
        (None, p) => p.to_owned(),
    }
}

/// Parses `bytes` as one JSON object into `T`; errors name the field
/// (`body` when the JSON itself is malformed, missing or not an object —
/// every body of the API is an object, and serde would otherwise read an
/// array such as `[null, null]` as a struct's fields in order). A key that
/// appears twice in one object is refused, naming it: a proxy and the
/// server must never read different values from one body.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ValidationError::new("body", "a JSON object is required"));
    }
    // Most bodies have no duplicate key and no number to rewrite: read them
    // straight into `T`. Whatever fails here (and every other body) takes
    // the full path below, which names the field.
    if is_plain(bytes)
        && let Ok(value) = serde_json::from_slice(bytes)
    {
        return Ok(value);
    }
    parse_full(bytes)
}

/// [`parse_json`] without its plain path: the body read whole with every
/// key checked, integral floats rewritten, then deserialized with the
/// offending field's path.
fn parse_full<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationError> {
    let mut json = parse_unique(bytes).map_err(|duplicate| match duplicate {
        Some(path) => ValidationError::new(
            path.clone(),
            format!("duplicate key {path}: each key may appear once in an object"),
        ),
        None => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(e) => ValidationError::new("body", format!("malformed JSON: {e}")),
            Ok(_) => ValidationError::new("body", "malformed JSON"),
        },
    })?;
    integral_floats_as_integers(&mut json);
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let text = e.into_inner().to_string();
        ValidationError::new(field_of(&path, &text, "body"), text)
    })
}

/// Rewrites numbers such as `3600.0` as the integers they are: JSON (and
/// JSON Schema's `integer`) does not tell `3600.0` from `3600`, and a count
/// field must take both. Fractions stay, and are refused where an integer
/// is expected.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(integer) = n.as_f64().filter(|_| n.is_f64()).and_then(integral) {
                *n = integer;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Parses a query string (without `?`) into `T`; errors name the
/// parameter (`query` when it is not about one).
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ValidationError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let text = e.into_inner().to_string();
        ValidationError::new(field_of(&path, &text, "query"), text)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        is_draining: Option<bool>,
        count: u32,
        nested: Option<BTreeMap<String, u32>>,
    }

    fn field(json: &str) -> String {
        parse_json::<Body>(json.as_bytes()).unwrap_err().field
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(r#"{"count": -1}"#), "count");
        assert_eq!(field(r#"{"count": "NaN"}"#), "count");
        assert_eq!(field(r#"{"count": 1e40}"#), "count");
        assert_eq!(field(r#"{"isDraining": true}"#), "count");
        assert_eq!(field(r#"{"count": 1, "isDrainig": true}"#), "isDrainig");
        assert_eq!(field(r#"{"count": 1, "nested": {"a": "x"}}"#), "nested.a");
        assert_eq!(field(r#"{"count": 1"#), "body");
        assert_eq!(field(r#"{"count": 1} x"#), "body");
        assert_eq!(field(""), "body");
    }

    #[test]
    fn only_objects_are_bodies() {
        for body in ["[1, null, null]", "[]", "null", "1", "\"x\"", "true"] {
            let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.message.as_str()),
                ("body", "a JSON object is required"),
                "{body}"
            );
        }
        #[derive(Debug, Deserialize)]
        struct Loose {}
        assert!(parse_json::<Loose>(b" \n {} ").is_ok());
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_spelling() {
        #[derive(Debug, Deserialize)]
        struct Counts {
            n: u64,
            x: f64,
        }
        let c = parse_json::<Counts>(br#"{"n": 3600.0, "x": 2}"#).unwrap();
        assert_eq!((c.n, c.x), (3600, 2.0));
        let e = parse_json::<Counts>(br#"{"n": 1.5, "x": 2}"#).unwrap_err();
        assert_eq!(e.field, "n");
        let e = parse_json::<Counts>(br#"{"n": -1.0, "x": 2}"#).unwrap_err();
        assert_eq!(e.field, "n");
        let e = parse_json::<Counts>(br#"{"n": 1e30, "x": 2}"#).unwrap_err();
        assert_eq!(e.field, "n");
    }

    #[test]
    fn plain_bodies_read_as_the_full_path_reads_them() {
        let bodies = [
            r#"{"a": 1, "b": [1, -2, 2.5, "x", null, true], "c": {"a": {"a": 0.25}}}"#,
            r#"{"code": "w-1", "cpuUsage": 12.5, "labels": {"room": "a\"b"}}"#,
            r#"{"e\u0061": 1, "ea": 2}"#,
            r#"{"n": 3600.0, "x": 1e3, "y": -2.0}"#,
            r#"{"n": 1e300, "m": 18446744073709551616.0}"#,
            r#"{"a": {"k": 1, "k": 2}}"#,
            r#"{"a": 1, "b": 2,}"#,
        ];
        for body in bodies {
            let full = parse_full::<serde_json::Value>(body.as_bytes());
            let fast = parse_json::<serde_json::Value>(body.as_bytes());
            assert_eq!(fast, full, "{body}");
        }
        // The plain path takes only what the full path would not rewrite.
        assert!(is_plain(br#"{"a": 1.5, "b": [{"c": 2}]}"#));
        assert!(!is_plain(br#"{"a": 1.0}"#));
        assert!(!is_plain(br#"{"a": 1, "a": 1}"#));
        assert!(!is_plain(br#"{"e\u0061": 1, "ea": 2}"#));
        assert!(!is_plain(br#"{"a": 1} x"#));
        let wide: Vec<String> = (0..40).map(|i| format!(r#""k{i}": {i}"#)).collect();
        let wide = format!("{{{}}}", wide.join(","));
        assert!(!is_plain(wide.as_bytes()));
        assert_eq!(
            parse_json::<serde_json::Value>(wide.as_bytes()),
            parse_full::<serde_json::Value>(wide.as_bytes())
        );
    }

    #[test]
    fn a_duplicate_key_is_refused_on_every_path() {
        let e = parse_json::<Body>(br#"{"count": 1, "count": 2}"#).unwrap_err();
        assert_eq!(e.field, "count");
        let e = parse_json::<Body>(br#"{"count": 1, "nested": {"a": 1, "a": 1}}"#).unwrap_err();
        assert_eq!(e.field, "nested.a");
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(is_json_content_type("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type("application/xml"));
        assert!(!is_json_content_type("multipart/form-data; boundary=x"));
    }
}
