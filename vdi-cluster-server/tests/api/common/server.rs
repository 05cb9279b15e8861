//! A real server on 127.0.0.1 port 0, its request helpers and their
//! replies.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::service::BackgroundConfig;
use vdi_cluster_core::{Clock, MemoryStore, Store};
use vdi_cluster_server::AppState;
use vdi_cluster_server::install::InstallConfig;
use vdi_cluster_server::server::run;

use super::CLUSTER_TOKEN;
use super::credentials::Cred;
use super::setup::Setup;

/// A running server; stopped when dropped.
pub struct TestServer {
    pub url: String,
    pub memory: Option<MemoryStore>,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestServer {
    pub async fn start(setup: Setup) -> Self {
        Self::start_with_clock(setup, None).await
    }

    /// As [`start`](Self::start), on `clock` when given.
    pub async fn start_with_clock(setup: Setup, clock: Option<Arc<dyn Clock>>) -> Self {
        let shutdown = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut builder = AppState::builder(Arc::clone(&setup.store), setup.client, setup.auth)
            .service(|s| s.config(setup.config))
            .limits(setup.limits)
            .throttle(setup.throttle)
            .stats_cache(setup.stats_window)
            .store_name(setup.store_name)
            .shutdown(shutdown.clone())
            .install(InstallConfig::new(
                CLUSTER_TOKEN.to_owned(),
                Some(url.clone()),
                std::env::current_exe().unwrap(),
            ));
        if let Some(clock) = clock {
            builder = builder.service(|s| s.clock(clock));
        }
        let state = builder.build();
        let background = BackgroundConfig {
            reconcile_enabled: false,
            ..BackgroundConfig::default()
        };
        let task = tokio::spawn(run(
            listener,
            state.clone(),
            background,
            Duration::from_secs(10),
        ));
        Self {
            url,
            memory: setup.memory,
            store: setup.store,
            state,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn memory(&self) -> &MemoryStore {
        self.memory.as_ref().expect("memory store")
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        cred: &Cred,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = cred.apply(self.request(method, path));
        if let Some(b) = body {
            req = req.json(b);
        }
        Reply::from(req.send().await.unwrap()).await
    }

    /// Admin GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &Cred::Admin, None).await
    }

    pub async fn heartbeat(&self, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/api/vdi/workers/heartbeat",
            &Cred::Worker,
            Some(body),
        )
        .await
    }

    pub async fn patch_worker(&self, code: &str, body: &Value) -> Reply {
        self.send(
            Method::PATCH,
            &format!("/api/vdi/workers/{code}"),
            &Cred::Admin,
            Some(body),
        )
        .await
    }

    pub async fn allocate(&self, exam: &str, user: &str) -> Reply {
        self.send(
            Method::POST,
            "/api/vdi/sessions",
            &Cred::Service,
            Some(&json!({"examId": exam, "userId": user})),
        )
        .await
    }

    pub async fn release(&self, exam: &str, user: &str) -> Reply {
        self.send(
            Method::DELETE,
            &format!("/api/vdi/sessions/{exam}/{user}"),
            &Cred::Service,
            None,
        )
        .await
    }

    pub async fn worker(&self, code: &str) -> Value {
        let r = self.get(&format!("/api/vdi/workers/{code}")).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json
    }
}

/// A response: status, headers, body (JSON when it parses, else `Null`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    /// Asserts Aetherium's error shape and returns the message.
    pub fn error_message(&self) -> &str {
        assert_eq!(self.json["code"], self.status, "{self:?}");
        assert!(self.json["error"].is_string(), "{self:?}");
        self.json["message"].as_str().expect("message")
    }
}
