//! The game day's webhook receiver: an HTTP server on 127.0.0.1 that the
//! control plane posts its alerts to, registered as an endpoint through
//! `POST /api/vdi/webhooks`. It answers 204 to every delivery and keeps
//! each `webhook-id` it got (with how often and of which type); every
//! delivery is verified with the endpoint's signing secret, as a receiver
//! would (those that arrive before the secret is known are verified once
//! it is).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::task::JoinHandle;

/// What arrived for one `webhook-id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Arrival {
    /// The payload's `type`.
    pub(crate) kind: String,
    /// How many times it arrived (a retry after a lost acknowledgement
    /// sends it again, under the same id).
    pub(crate) times: u32,
    /// Whether its signature verified.
    pub(crate) verified: bool,
}

#[derive(Debug, Default)]
struct Seen {
    secret: Option<String>,
    by_id: BTreeMap<String, Arrival>,
    /// Deliveries kept until the secret is known: (headers, body).
    unchecked: Vec<(HeaderMap, Bytes)>,
}

/// The receiver.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// Where deliveries are posted.
    pub(crate) url: String,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    standardwebhooks::Webhook::new(secret)
        .and_then(|w| w.verify(body, headers))
        .is_ok()
}

fn record(seen: &mut Seen, headers: &HeaderMap, body: &[u8], verified: bool) {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let kind = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b["type"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let arrival = seen.by_id.entry(id).or_default();
    arrival.kind = kind;
    arrival.times += 1;
    arrival.verified |= verified;
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut seen = seen.lock().expect("receiver lock");
    match seen.secret.clone() {
        Some(secret) => {
            let verified = verify(&secret, &headers, &body);
            record(&mut seen, &headers, &body, verified);
        }
        None => seen.unchecked.push((headers, body)),
    }
    StatusCode::NO_CONTENT
}

impl Receiver {
    /// Listens on a free loopback port.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/gameday", listener.local_addr()?);
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let app = axum::Router::new()
            .route("/hooks/gameday", post(receive))
            .with_state(Arc::clone(&seen));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, seen, task })
    }

    /// The endpoint's signing secret, from its creation's answer: verifies
    /// what arrived before it and everything after.
    pub(crate) fn set_secret(&self, secret: &str) {
        let mut seen = self.seen.lock().expect("receiver lock");
        seen.secret = Some(secret.to_owned());
        for (headers, body) in std::mem::take(&mut seen.unchecked) {
            let verified = verify(secret, &headers, &body);
            record(&mut seen, &headers, &body, verified);
        }
    }

    /// Everything received so far, by `webhook-id`.
    pub(crate) fn arrivals(&self) -> BTreeMap<String, Arrival> {
        self.seen.lock().expect("receiver lock").by_id.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
