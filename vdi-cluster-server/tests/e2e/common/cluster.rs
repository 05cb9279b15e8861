//! A whole cluster: a control plane and healthy workers.

use super::api::Api;
use super::control_plane::{ControlPlane, CpOptions};
use super::wait::eventually;
use super::worker::{Worker, WorkerOptions};

/// A control plane and workers `w1..wN` with `slots` each, all healthy.
pub struct Cluster {
    pub cp: ControlPlane,
    pub api: Api,
    pub workers: Vec<Worker>,
}

impl Cluster {
    pub async fn start(slots: &[u32], cp: CpOptions) -> Self {
        let cp = ControlPlane::start(cp).await;
        let api = Api::new(&cp.url);
        let mut workers = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let options = WorkerOptions {
                slots: *s,
                ..WorkerOptions::default()
            };
            workers.push(Worker::start(&format!("w{}", i + 1), &cp.api_base(), options).await);
        }
        let cluster = Self { cp, api, workers };
        cluster.wait_all_healthy().await;
        cluster
    }

    pub async fn wait_all_healthy(&self) {
        let n = self.workers.len() as u64;
        eventually("every worker healthy", || async {
            let s = self.api.summary().await;
            (s["healthyWorkers"] == n && s["schedulableWorkers"] == n).then_some(())
        })
        .await;
    }

    pub fn worker(&self, code: &str) -> &Worker {
        self.workers.iter().find(|w| w.code == code).unwrap()
    }

    pub fn worker_mut(&mut self, code: &str) -> &mut Worker {
        self.workers.iter_mut().find(|w| w.code == code).unwrap()
    }
}
