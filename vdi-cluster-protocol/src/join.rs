//! Admins ↔ control plane: join tokens (as SkyPanelV2 and minicloud).
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/join-tokens` | [`CreateJoinToken`] (optional) | [`CreatedJoinToken`] |
//! | `GET` | `/api/vdi/join-tokens` | — | [`JoinTokenList`] |
//! | `DELETE` | `/api/vdi/join-tokens/{id}` | — | — |
//! | `POST` | `/api/vdi/workers/{code}/credential/reset` | — | [`CredentialReset`] |
//! | `DELETE` | `/api/vdi/workers/{code}/credential` | — | — |
//! | `POST` | `/api/vdi/workers/install-script` | [`InstallScriptRequest`] (optional) | a shell script |
//!
//! A token may only create a new worker, or, when bound to a `code`, that
//! worker — also after an admin reset its credential, which answers such a
//! token ([`CredentialReset`]). Revoking a worker's credential refuses it
//! from its next request on.
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
    /// Bind it to this worker code: it may then join that worker only
    /// (also after an admin reset the worker's credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )]
    pub code: Option<String>,
}

/// `POST /api/vdi/workers/install-script` body (SkyPanelV2's generated
/// installation script): the script carries a fresh join token for
/// one registration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallScriptRequest {
    /// Lifetime of the script's join token, seconds (default 3600, at
    /// most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub ttl_sec: Option<u64>,
    /// The worker's code (default: the host's name, as the script finds
    /// it); the join token is then bound to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )]
    pub code: Option<String>,
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
    /// The worker code it is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
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
            code: token.worker.as_ref().map(ToString::to_string),
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

/// `POST /api/vdi/workers/{code}/credential/reset` answer: the worker's
/// credential accepts nothing any more, and `joinToken` (shown once, one
/// use, bound to the worker) lets it join again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialReset {
    /// The worker's code.
    pub code: String,
    /// A join token bound to this worker, shown once.
    pub join_token: CreatedJoinToken,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn install_script_request_field_names() {
        let r: InstallScriptRequest =
            serde_json::from_value(json!({"ttlSec": 60, "code": "w1"})).unwrap();
        assert_eq!(r.ttl_sec, Some(60));
        assert_eq!(r.code.as_deref(), Some("w1"));
        assert!(serde_json::from_value::<InstallScriptRequest>(json!({"other": 1})).is_err());
    }

    fn token() -> JoinToken {
        JoinToken {
            id: "abc".into(),
            token_hash: "secret-hash".into(),
            created_by: "admin".into(),
            created_at: Timestamp(1),
            expires_at: Timestamp(10),
            max_uses: 2,
            uses: 1,
            worker: None,
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
        assert_eq!(
            (body.ttl_sec, body.max_uses, body.code),
            (Some(60), Some(3), None)
        );
        let bound: CreateJoinToken = serde_json::from_value(json!({"code": "w-1"})).unwrap();
        assert_eq!(bound.code.as_deref(), Some("w-1"));
    }

    #[test]
    fn bound_tokens_and_resets() {
        let mut t = token();
        t.worker = Some(vdi_cluster_core::WorkerId::parse("code", "w-1").unwrap());
        let reset = CredentialReset {
            code: "w-1".into(),
            join_token: CreatedJoinToken {
                token: "vdij_x".into(),
                info: JoinTokenJson::new(&t, Timestamp(5)),
            },
        };
        assert_eq!(
            serde_json::to_value(reset).unwrap(),
            json!({"code": "w-1", "joinToken": {
                "token": "vdij_x", "id": "abc", "createdBy": "admin", "createdAt": 1,
                "expiresAt": 10, "maxUses": 2, "uses": 1, "usable": true, "code": "w-1",
            }})
        );
    }
}
