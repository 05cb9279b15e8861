//! What the protocol's tests share.

/// The field names of the JSON object `value`, sorted: a map's own order
/// depends on serde_json's features, which a workspace build unifies.
pub(crate) fn sorted_keys(value: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
