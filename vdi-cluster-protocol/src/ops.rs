//! Operations: `/healthz` and `/readyz`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// `ok` or `ready`.
    pub status: String,
    /// The backend (`memory`, `redis`, `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The store node serving writes, when the backend follows a primary
    /// that can move (Redis through Sentinel): `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
}

impl HealthJson {
    /// Liveness: `{"status": "ok"}`.
    pub fn alive() -> Self {
        Self {
            status: "ok".into(),
            store: None,
            primary: None,
        }
    }

    /// Readiness over backend `store`: `{"status": "ready", "store": …}`,
    /// with `"primary": "host:port"` when the store names its primary.
    pub fn ready(store: &str, primary: Option<String>) -> Self {
        Self {
            status: "ready".into(),
            store: Some(store.to_owned()),
            primary,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn health_field_names() {
        assert_eq!(
            serde_json::to_value(HealthJson::alive()).unwrap(),
            json!({"status": "ok"})
        );
        assert_eq!(
            serde_json::to_value(HealthJson::ready("redis", None)).unwrap(),
            json!({"status": "ready", "store": "redis"})
        );
        assert_eq!(
            serde_json::to_value(HealthJson::ready("redis", Some("10.0.0.2:6379".into()))).unwrap(),
            json!({"status": "ready", "store": "redis", "primary": "10.0.0.2:6379"})
        );
    }
}
