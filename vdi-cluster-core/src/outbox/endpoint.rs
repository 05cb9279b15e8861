//! A webhook endpoint's configuration and its validation.

use serde::{Deserialize, Serialize};

use super::alerts::WEBHOOK_TYPES;
use crate::time::Timestamp;
use crate::validation::ValidationError;

/// Longest accepted URL, bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest accepted description, characters.
pub const MAX_DESCRIPTION_LEN: usize = 500;

/// Where alerts go, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    /// Its id (`wh_…`).
    pub id: String,
    /// The `http` or `https` URL deliveries are posted to.
    pub url: String,
    /// The webhook types it receives (see [`WEBHOOK_TYPES`]); empty: all.
    pub types: Vec<String>,
    /// What it is for, for operators.
    pub description: Option<String>,
    /// The signing secret, `whsec_` and base64. Stored so every replica
    /// signs alike; shown to the admin once, when the endpoint is created.
    pub secret: String,
    /// When it was created.
    pub created_at: Timestamp,
}

impl WebhookEndpoint {
    /// A validated endpoint. Errors name the field: `url` (not `http` or
    /// `https`, no host, credentials in it, too long), `eventTypes` (an
    /// unknown type), `description` (too long).
    pub fn new(
        id: String,
        url: &str,
        types: Vec<String>,
        description: Option<String>,
        secret: String,
        created_at: Timestamp,
    ) -> Result<Self, ValidationError> {
        validate_url(url)?;
        if let Some(t) = types.iter().find(|t| !WEBHOOK_TYPES.contains(&t.as_str())) {
            return Err(ValidationError::new(
                "eventTypes",
                format!(
                    "unknown event type {t:?}; known: {}",
                    WEBHOOK_TYPES.join(", ")
                ),
            ));
        }
        let description = description.filter(|d| !d.trim().is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
        {
            return Err(ValidationError::new(
                "description",
                format!("at most {MAX_DESCRIPTION_LEN} characters"),
            ));
        }
        let mut types = types;
        types.sort();
        types.dedup();
        Ok(Self {
            id,
            url: url.to_owned(),
            types,
            description,
            secret,
            created_at,
        })
    }

    /// Whether the endpoint receives webhooks of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }
}

/// Checks a webhook URL: `http://` or `https://`, a host, no user name or
/// password, no whitespace or control characters, at most
/// [`MAX_URL_LEN`] bytes. Loopback hosts are allowed here: where a
/// delivery may go is checked at every delivery, against the addresses
/// the host resolves to then ([`target`](super::target)).
pub fn validate_url(url: &str) -> Result<(), ValidationError> {
    let bad = |m: &str| Err(ValidationError::new("url", m));
    if url.len() > MAX_URL_LEN {
        return bad("too long");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain whitespace or control characters");
    }
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else {
        return bad("must be an http:// or https:// URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("must not contain credentials (user:password@)");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return bad("has no host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, types: &[&str]) -> Result<WebhookEndpoint, ValidationError> {
        WebhookEndpoint::new(
            "wh_1".into(),
            url,
            types.iter().map(|t| (*t).to_owned()).collect(),
            None,
            "whsec_x".into(),
            Timestamp(0),
        )
    }

    #[test]
    fn urls_are_checked() {
        for ok in [
            "http://127.0.0.1:9000/hook",
            "https://chat.example.edu/hooks/abc?x=1",
            "http://[::1]:8080/",
            "HTTPS://Example.org",
        ] {
            assert!(endpoint(ok, &[]).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://example.org/",
            "example.org/hook",
            "https://user:pw@example.org/",
            "https:///path",
            "http://exa mple.org/",
            "",
        ] {
            assert_eq!(endpoint(bad, &[]).unwrap_err().field, "url", "{bad}");
        }
    }

    #[test]
    fn types_are_known_and_filter() {
        assert_eq!(
            endpoint("http://h/", &["worker.gone"]).unwrap_err().field,
            "eventTypes"
        );
        let e = endpoint("http://h/", &["worker.offline", "worker.offline"]).unwrap();
        assert_eq!(e.types, vec!["worker.offline".to_owned()]);
        assert!(e.wants("worker.offline"));
        assert!(!e.wants("worker.recovered"));
        assert!(
            endpoint("http://h/", &[])
                .unwrap()
                .wants("worker.recovered")
        );
    }
}
