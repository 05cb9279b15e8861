//! Admins ↔ control plane: join tokens (seeds 002/003).
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/join-tokens` | [`CreateJoinToken`] (optional) | [`CreatedJoinToken`] |
//! | `GET` | `/api/vdi/join-tokens` | — | [`JoinTokenList`] |
//! | `DELETE` | `/api/vdi/join-tokens/{id}` | — | — |
//!
//! A worker joins with the token on [`JOIN_PATH`](crate::JOIN_PATH) and is
//! answered a [`JoinResponse`](crate::JoinResponse) (see
//! [`node`](crate::node)). A token's secret appears in [`CreatedJoinToken`]
//! only; listings never carry it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::Timestamp;
use vdi_cluster_core::store::JoinToken;

/// `POST /api/vdi/join-tokens` body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateJoinToken {
    /// Lifetime, seconds (default 3600, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub ttl_sec: Option<u64>,
    /// Registrations it allows (default 1, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_uses: Option<u32>,
}

/// A join token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenJson {
    /// Public id, for revoking.
    pub id: String,
    /// The admin who created it.
    pub created_by: String,
    /// When (ms since the epoch).
    pub created_at: u64,
    /// Refused from this instant (ms since the epoch).
    pub expires_at: u64,
    /// Registrations it allows.
    pub max_uses: u32,
    /// Registrations made with it.
    pub uses: u32,
    /// Whether it can still be used now.
    pub usable: bool,
}

impl JoinTokenJson {
    /// The listing of `token` at `now`.
    pub fn new(token: &JoinToken, now: Timestamp) -> Self {
        Self {
            id: token.id.clone(),
            created_by: token.created_by.clone(),
            created_at: token.created_at.as_millis(),
            expires_at: token.expires_at.as_millis(),
            max_uses: token.max_uses,
            uses: token.uses,
            usable: token.expires_at > now && token.uses < token.max_uses,
        }
    }
}

/// A join token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedJoinToken {
    /// The token, shown once: give it to `vdi-cluster worker --join-token`
    /// (or `WORKER_JOIN_TOKEN`).
    pub token: String,
    /// Its listing, inline.
    #[serde(flatten)]
    pub info: JoinTokenJson,
}

/// The list of join tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenList {
    /// Newest first.
    pub tokens: Vec<JoinTokenJson>,
    /// How many.
    pub total: usize,
}

impl JoinTokenList {
    /// The listing of `tokens` at `now`.
    pub fn new(tokens: &[JoinToken], now: Timestamp) -> Self {
        let tokens: Vec<JoinTokenJson> =
            tokens.iter().map(|t| JoinTokenJson::new(t, now)).collect();
        Self {
            total: tokens.len(),
            tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn token() -> JoinToken {
        JoinToken {
            id: "abc".into(),
            token_hash: "secret-hash".into(),
            created_by: "admin".into(),
            created_at: Timestamp(1),
            expires_at: Timestamp(10),
            max_uses: 2,
            uses: 1,
        }
    }

    #[test]
    fn join_token_field_names() {
        let listed = json!({
            "id": "abc", "createdBy": "admin", "createdAt": 1, "expiresAt": 10,
            "maxUses": 2, "uses": 1, "usable": true,
        });
        assert_eq!(
            serde_json::to_value(JoinTokenList::new(&[token()], Timestamp(5))).unwrap(),
            json!({"tokens": [listed.clone()], "total": 1})
        );
        let created = CreatedJoinToken {
            token: "vdij_x".into(),
            info: JoinTokenJson::new(&token(), Timestamp(10)),
        };
        let mut expected = listed;
        expected["token"] = "vdij_x".into();
        expected["usable"] = false.into();
        assert_eq!(serde_json::to_value(created).unwrap(), expected);
        let body: CreateJoinToken =
            serde_json::from_value(json!({"ttlSec": 60, "maxUses": 3})).unwrap();
        assert_eq!((body.ttl_sec, body.max_uses), (Some(60), Some(3)));
    }
}
