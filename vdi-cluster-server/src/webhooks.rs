//! Webhook deliveries over HTTP, signed per Standard Webhooks
//! (<https://www.standardwebhooks.com/>): [`HttpWebhookSender`] is the
//! [`WebhookSender`] the leader's delivery step uses.
//!
//! Each attempt posts the protocol's
//! [`WebhookPayload`](vdi_cluster_protocol::webhooks::WebhookPayload) with
//! `webhook-id` (the delivery's id, the same on every retry),
//! `webhook-timestamp` (the attempt's time, seconds) and
//! `webhook-signature`: `v1,` and the base64 of HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` keyed with the base64-decoded secret after
//! `whsec_`. Redirects are not followed; any 2xx is a success. Loopback,
//! link-local and private targets are refused at every delivery unless
//! allowed for a lab ([`webhook_guard`](crate::webhook_guard)).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use vdi_cluster_core::outbox::{OutboxEntry, WebhookEndpoint};
use vdi_cluster_core::service::{SendResult, WebhookSender};
use vdi_cluster_protocol::webhooks::{
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, WebhookPayload,
};

use crate::client::ClientBuildError;
use crate::webhook_guard::{GuardedResolver, check_literal, refusal_in};

/// Prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// Why a secret cannot sign.
#[derive(Debug, thiserror::Error)]
#[error("the webhook secret must be whsec_ followed by base64")]
pub struct BadSecret;

/// The `webhook-signature` value of `body` sent as message `id` at
/// `timestamp` (seconds) with `secret` (`whsec_…`).
pub fn sign(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> Result<String, BadSecret> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .ok_or(BadSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| BadSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Posts deliveries with `reqwest`.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    http: reqwest::Client,
    allow_private: bool,
}

impl HttpWebhookSender {
    /// A sender (each attempt gets the timeout the delivery step passes)
    /// that refuses loopback, link-local and private targets
    /// ([`webhook_guard`](crate::webhook_guard)).
    pub fn new() -> Result<Self, ClientBuildError> {
        Self::build(false)
    }

    /// A sender that also delivers to loopback, link-local and private
    /// addresses: for labs (`serve --webhook-allow-private`).
    pub fn allowing_private_targets() -> Result<Self, ClientBuildError> {
        Self::build(true)
    }

    fn build(allow_private: bool) -> Result<Self, ClientBuildError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vdi-cluster-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            http: builder.build()?,
            allow_private,
        })
    }
}

fn failed(error: impl Into<String>) -> SendResult {
    SendResult {
        status: None,
        error: Some(error.into()),
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        entry: &OutboxEntry,
        timeout: Duration,
    ) -> SendResult {
        let Some(payload) = WebhookPayload::new(entry) else {
            return failed("this event has no webhook form");
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(body) => body,
            Err(e) => return failed(format!("cannot encode the payload: {e}")),
        };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = match sign(&endpoint.secret, &entry.id, timestamp, &body) {
            Ok(s) => s,
            Err(e) => return failed(e.to_string()),
        };
        let url = match reqwest::Url::parse(&endpoint.url) {
            Ok(url) => url,
            Err(e) => return failed(format!("bad URL: {e}")),
        };
        if !self.allow_private
            && let Err(refused) = check_literal(&url)
        {
            return failed(refused.to_string());
        }
        let sent = self
            .http
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(WEBHOOK_ID_HEADER, &entry.id)
            .header(WEBHOOK_TIMESTAMP_HEADER, timestamp)
            .header(WEBHOOK_SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => SendResult {
                status: Some(response.status().as_u16()),
                error: None,
            },
            Err(e) => match refusal_in(&e) {
                Some(refused) => failed(refused.to_string()),
                None if e.is_timeout() => failed("timed out"),
                None if e.is_connect() => failed("connection failed"),
                None => failed(format!("request failed: {e}")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_standard_library() {
        let secret = generate_secret();
        let body = br#"{"type":"worker.offline"}"#;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let signature = sign(&secret, "msg_1", now, body).unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
        verifier.verify(body, &headers).unwrap();
        let tampered = br#"{"type":"worker.recovered"}"#;
        assert!(verifier.verify(tampered, &headers).is_err());
    }

    #[test]
    fn the_specification_example_signs_alike() {
        // The example of the Standard Webhooks specification.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(sign("nope", "m", 1, b"").is_err());
    }
}
