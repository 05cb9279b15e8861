//! A control plane whose scale hook is the sample
//! `examples/deploy/scale-hook.sh`: it starts simulated workers of this
//! build on loopback ports and stops them again. The control plane runs its
//! hook with a cleared environment, so a small wrapper in the run's own
//! directory gives the sample its settings (the agent, the control plane,
//! the tokens file) and runs it. Workers the hook started and did not stop
//! are killed, by their pid files, when the guard drops.

use std::path::{Path, PathBuf};

use super::{
    Api, BIN, CLUSTER_TOKEN, ControlPlane, CpOptions, WORKER_TOKEN, Worker, WorkerOptions,
};
use super::{free_port, wait::eventually};

/// A control plane with the sample scale hook, one worker `w1`, and the
/// hook's state directory.
pub struct ScaledCluster {
    pub cp: ControlPlane,
    pub api: Api,
    pub w1: Worker,
    state: PathBuf,
}

impl ScaledCluster {
    /// `w1` with `slots` slots; the control plane asks the hook as soon as
    /// an exam is booked (a scale lead of an hour), retries after 1 s, keeps
    /// no headroom, and with `scalable` slots per zone admission counts
    /// what the hook may add. Each worker the hook starts has 4 slots.
    pub async fn start(slots: u32, scalable: u32) -> Self {
        let state =
            std::env::temp_dir().join(format!("vdi-scale-hook-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&state).unwrap();
        let port = free_port();
        let hook = write_hook(&state, port);
        let extra: Vec<String> = [
            "--scale-command",
            hook.to_str().unwrap(),
            "--scale-lead-sec",
            "3600",
            "--scale-retry-sec",
            "1",
            "--exam-headroom-percent",
            "0",
            "--admission-counts-scalable",
            &scalable.to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let cp = ControlPlane::start_on(
            port,
            CpOptions {
                extra,
                ..CpOptions::default()
            },
        )
        .await;
        let api = Api::new(&cp.url);
        let options = WorkerOptions {
            slots,
            ..WorkerOptions::default()
        };
        let w1 = Worker::start("w1", &cp.api_base(), options).await;
        eventually("w1 healthy", || async {
            (api.summary().await["healthyWorkers"] == 1).then_some(())
        })
        .await;
        Self { cp, api, w1, state }
    }

    /// The capacity requests, as `GET /api/vdi/capacity-requests` lists them.
    pub async fn requests(&self) -> Vec<serde_json::Value> {
        let listed = self.api.get("/api/vdi/capacity-requests").await;
        listed["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Codes of the workers the hook started and has not stopped.
    pub fn running(&self) -> Vec<String> {
        let mut codes: Vec<String> = pid_files(&self.state)
            .iter()
            .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
            .collect();
        codes.sort();
        codes
    }
}

impl Drop for ScaledCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_logs(&self.state);
        }
        for pid_file in pid_files(&self.state) {
            if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", pid.trim()])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// The tail of the log of every worker the hook started, for a failing
/// test.
fn print_logs(state: &Path) {
    let Ok(requests) = std::fs::read_dir(state) else {
        return;
    };
    let logs = requests
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path()).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"));
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        eprintln!("--- {} (last 30 lines)\n{tail}", log.display());
    }
}

/// The pid files of the workers the hook runs (one directory per request).
fn pid_files(state: &Path) -> Vec<PathBuf> {
    let Ok(requests) = std::fs::read_dir(state) else {
        return Vec::new();
    };
    requests
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| std::fs::read_dir(e.path()).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
        .collect()
}

/// The wrapper the control plane runs: the sample hook with this run's
/// settings.
fn write_hook(state: &Path, cp_port: u16) -> PathBuf {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/deploy/scale-hook.sh");
    let tokens = state.join("tokens.env");
    std::fs::write(
        &tokens,
        format!("WORKER_CLUSTER_TOKEN={CLUSTER_TOKEN}\nWORKER_HEARTBEAT_TOKEN={WORKER_TOKEN}\n"),
    )
    .unwrap();
    let hook = state.join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n\
             export VDI_SCALE_STATE_DIR='{state}' VDI_SCALE_WORKER_BIN='{BIN}' \\\n\
             VDI_SCALE_CONTROL_PLANE='http://127.0.0.1:{cp_port}/api' \\\n\
             VDI_SCALE_SLOTS_PER_WORKER=4 \\\n\
             VDI_SCALE_TOKENS_FILE='{tokens}'\n\
             exec sh '{sample}'\n",
            state = state.display(),
            tokens = tokens.display(),
            sample = sample.display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    hook
}
