//! The server-sent events of a control plane, read in the background.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::api::Api;
use super::tokens::admin_token;
use super::wait::eventually;

/// The events stream (`GET /api/vdi/events`), collected in the background.
pub struct Events {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    pub async fn subscribe(api: &Api) -> Self {
        let mut response = reqwest::Client::new()
            .get(format!("{}/api/vdi/events", api.base))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let mut name = String::new();
                    let mut data = String::new();
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            name = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if !name.is_empty() {
                        let value = serde_json::from_str(&data).unwrap_or(Value::Null);
                        sink.lock().unwrap().push((name, value));
                    }
                }
            }
        });
        let events = Self { seen, task };
        events.wait("ready", |_| true).await;
        events
    }

    /// The first event named `name` matching `pred`.
    pub async fn wait(&self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("a {name} event"), || async {
            self.seen
                .lock()
                .unwrap()
                .iter()
                .find(|(n, v)| n == name && pred(v))
                .map(|(_, v)| v.clone())
        })
        .await
    }

    /// Every event so far named `name`.
    pub fn all(&self, name: &str) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}
