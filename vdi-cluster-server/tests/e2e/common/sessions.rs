//! Sessions as the tests compare them: `examId/userId` keys.

use serde_json::Value;

/// `examId/userId` of a session, a dispatch or a worker's own session.
pub fn session_key(s: &Value) -> String {
    format!(
        "{}/{}",
        s["examId"].as_str().unwrap(),
        s["userId"].as_str().unwrap()
    )
}

/// The sorted keys of a JSON array of sessions.
pub fn sorted_session_keys(sessions: &Value) -> Vec<String> {
    let mut keys: Vec<String> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(session_key)
        .collect();
    keys.sort();
    keys
}

/// `worker` → sorted session keys, from an allocation answer list.
pub fn by_worker(sessions: &[Value]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for s in sessions {
        map.entry(s["workerCode"].as_str().unwrap().to_owned())
            .or_default()
            .push(session_key(s));
    }
    for v in map.values_mut() {
        v.sort();
    }
    map
}
