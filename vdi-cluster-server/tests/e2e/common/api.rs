//! HTTP helpers: a client with a bound, and a client of a control plane's
//! API as an admin and as the exam application.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::sessions::sorted_session_keys;
use super::tokens::{admin_token, service_token};

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A response's status and its JSON body (`Null` when it has none).
pub(super) async fn status_and_json(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A client of a control plane's API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
    admin: String,
    service: String,
}

impl Api {
    pub fn new(url: &str) -> Self {
        Self::with_http(url, http())
    }

    /// A client of the API at `url` through `http` (a client that trusts
    /// a test CA).
    pub fn with_http(url: &str, http: reqwest::Client) -> Self {
        Self {
            base: url.to_owned(),
            http,
            admin: admin_token(),
            service: service_token(),
        }
    }

    /// An admin request; transport errors are returned, not panics.
    pub async fn try_admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        Ok(status_and_json(r).await)
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.try_admin(method, path, body).await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.admin(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn summary(&self) -> Value {
        self.get("/api/vdi/workers/summary").await
    }

    pub async fn worker(&self, code: &str) -> Value {
        self.get(&format!("/api/vdi/workers/{code}")).await
    }

    pub async fn reconcile(&self) -> Value {
        let (status, body) = self
            .admin(Method::POST, "/api/vdi/workers/reconcile", None)
            .await;
        assert_eq!(status, 200, "reconcile: {body}");
        body
    }

    /// `(examId/userId)` of the dispatches on a worker.
    pub async fn worker_session_keys(&self, code: &str) -> Vec<String> {
        let body = self.get(&format!("/api/vdi/workers/{code}/sessions")).await;
        sorted_session_keys(&body["sessions"])
    }

    /// [`Self::worker_session_keys`], or `None` while the control plane
    /// does not list the worker (after a store lost its records, until the
    /// worker's next heartbeat registers it again).
    pub async fn listed_worker_session_keys(&self, code: &str) -> Option<Vec<String>> {
        let path = format!("/api/vdi/workers/{code}/sessions");
        match self.try_admin(Method::GET, &path, None).await {
            Ok((status, body)) if status == 200 => Some(sorted_session_keys(&body["sessions"])),
            _ => None,
        }
    }

    /// The session API, with a SERVICE token (the exam application).
    pub async fn try_allocate(
        &self,
        exam: &str,
        user: &str,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let r = self
            .http
            .post(format!("{}/api/vdi/sessions", self.base))
            .bearer_auth(&self.service)
            .json(&json!({"examId": exam, "userId": user}))
            .send()
            .await?;
        Ok(status_and_json(r).await)
    }

    /// Allocates and expects success (200 or 201); returns the session. A
    /// paced start answered 202 `starting` (its worker's start permits all
    /// taken) is followed as the exam application does: `GET` until the
    /// desktop is up, then the session as a repeated request answers it.
    pub async fn allocate(&self, exam: &str, user: &str) -> Value {
        let (status, body) = self.try_allocate(exam, user).await.unwrap();
        if status == 202 && body["state"] == "starting" {
            self.until_started(exam, user).await;
            return Box::pin(self.allocate(exam, user)).await;
        }
        assert!(
            status == 200 || status == 201,
            "allocate {exam}/{user}: {status} {body}"
        );
        body
    }

    /// Polls `GET` while the session's paced start waits or runs.
    pub async fn until_started(&self, exam: &str, user: &str) {
        super::wait::eventually(&format!("{exam}/{user}'s desktop started"), || async {
            let (status, body) = self.session(exam, user).await;
            (status == 200 && body["state"] != "starting").then_some(())
        })
        .await;
    }

    pub async fn session(&self, exam: &str, user: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}/api/vdi/sessions/{exam}/{user}", self.base))
            .bearer_auth(&self.service)
            .send()
            .await
            .unwrap();
        status_and_json(r).await
    }

    pub async fn release(&self, exam: &str, user: &str) -> Value {
        let r = self
            .http
            .delete(format!("{}/api/vdi/sessions/{exam}/{user}", self.base))
            .bearer_auth(&self.service)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}
