//! SkyPanelV2's installation script against a loopback control plane, run
//! with `--prefix <tempdir> --no-systemd`: the worker joins and
//! heartbeats; the script's join token cannot be used again; a second run
//! changes nothing; `--uninstall` stops an agent whose script was killed
//! alone (it deregisters) and removes everything it wrote; `--upgrade`
//! is refused by the change freeze while an exam needs the worker, and
//! forced with a reason replaces and restarts the agent. With
//! `--lab-ca`, against a control plane that requires mutual TLS, the script
//! issues the worker's certificate from the lab's CA, the worker joins and
//! takes a session over TLS, and `--uninstall` removes the certificate too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde_json::json;

use crate::common::{Api, ControlPlane, CpOptions, eventually, free_port, http, wait_worker};

/// The script running in its own process group (it starts the agent):
/// the whole group is killed when this drops.
struct Script {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Script {
    fn run(path: &Path, args: &[String]) -> Self {
        Self::run_with(path, args, &[])
    }

    /// [`run`](Self::run) with `env` set too.
    fn run_with(path: &Path, args: &[String], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new("sh")
            .arg(path)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child: Some(child),
            lines,
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.as_ref().unwrap().id()).unwrap()).unwrap()
    }

    fn printed(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    async fn wait_printed(&self, needle: &str) {
        eventually(&format!("the script printing {needle:?}"), || async {
            self.printed(needle).then_some(())
        })
        .await;
    }

    /// SIGTERM to the script (which passes it to the agent), then waits.
    async fn stop(&mut self) {
        kill_process(self.pid(), Signal::TERM).unwrap();
        let mut child = self.child.take().unwrap();
        eventually("the script to exit", || {
            let exited = child.try_wait().unwrap().is_some();
            async move { exited.then_some(()) }
        })
        .await;
    }
}

impl Script {
    /// SIGKILL to the script alone: the agent it started keeps running.
    async fn kill_script_alone(&mut self) {
        kill_process(self.pid(), Signal::KILL).unwrap();
        let mut child = self.child.take().unwrap();
        eventually("the script to die", || {
            let exited = child.try_wait().unwrap().is_some();
            async move { exited.then_some(()) }
        })
        .await;
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = kill_process_group(self.pid(), Signal::KILL);
            let _ = self.child.take().unwrap().wait();
        }
    }
}

/// Every file under `dir`: its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let mode = meta.permissions().mode() & 0o777;
                files.insert(path.clone(), (std::fs::read(&path).unwrap(), mode));
            }
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_script_joins_a_worker_idempotently_and_uninstalls() {
    let cp = ControlPlane::start(CpOptions::default()).await;
    let api = Api::new(&cp.url);
    let admin = crate::common::admin_token();
    let r = http()
        .post(format!("{}/api/vdi/workers/install-script", cp.url))
        .bearer_auth(&admin)
        .json(&json!({"ttlSec": 600, "code": "installed-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/x-shellscript")
    );
    let text = r.text().await.unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("JOIN_TOKEN='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .expect("a join token in the script")
        .to_owned();

    let dir = std::env::temp_dir().join(format!("vdi-install-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("install-worker.sh");
    std::fs::write(&script, &text).unwrap();
    let prefix = dir.join("prefix");
    let port = free_port();
    let mut args: Vec<String> = [
        "--prefix",
        prefix.to_str().unwrap(),
        "--no-systemd",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--api-base-url",
        &format!("http://127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for setting in [
        "VDI_PROVISIONER=simulated",
        "WORKER_TOTAL_CPUS=4",
        "WORKER_TOTAL_MEMORY_MB=4096",
        "WORKER_RESERVED_CPUS=0",
        "WORKER_RESERVED_MEMORY_MB=0",
        "VM_CPU_CORES=1",
        "VM_MEMORY_MB=1024",
        "HEARTBEAT_INTERVAL_SEC=1",
        "HEARTBEAT_BACKOFF_MAX_SEC=1",
        "WORKER_REPORT_USAGE=false",
    ] {
        args.extend(["--set".to_owned(), setting.to_owned()]);
    }

    // First run: installs, joins, heartbeats, runs in the foreground.
    let mut first = Script::run(&script, &args);
    first
        .wait_printed("the control plane accepted a heartbeat")
        .await;
    assert!(first.printed("installed "));
    let view = wait_worker(&api, "installed-1", "availability", json!("healthy")).await;
    assert_eq!(view["maxSessions"], 4);
    let env = std::fs::metadata(prefix.join("etc/worker.env")).unwrap();
    assert_eq!(env.permissions().mode() & 0o777, 0o600);
    assert!(prefix.join("var/credential").is_file());
    let placed = api.allocate("exam-install", "s1").await;
    assert_eq!(placed["workerCode"], "installed-1");
    api.release("exam-install", "s1").await;

    // The script's join token was single-use: spent, and refused.
    let tokens = api.get("/api/vdi/join-tokens").await;
    let spent = &tokens["tokens"][0];
    assert_eq!(spent["code"], "installed-1", "{tokens}");
    assert_eq!(
        (spent["uses"].clone(), spent["usable"].clone()),
        (json!(1), json!(false))
    );
    for code in ["installed-1", "another"] {
        let again = http()
            .post(format!("{}/api/vdi/workers/join", cp.url))
            .header("x-join-token", &token)
            .json(&json!({"code": code, "apiBaseUrl": "http://127.0.0.1:1"}))
            .send()
            .await
            .unwrap();
        assert!(
            again.status().is_client_error(),
            "{code}: {}",
            again.status()
        );
    }
    first.stop().await;
    wait_worker(&api, "installed-1", "availability", json!("offline")).await;
    let installed = snapshot(&prefix);

    // Second run: nothing downloaded or rewritten; the kept credential
    // brings the worker back.
    let mut second = Script::run(&script, &args);
    second
        .wait_printed("the control plane accepted a heartbeat")
        .await;
    assert!(second.printed("agent already installed"));
    assert!(second.printed("keeping "));
    wait_worker(&api, "installed-1", "availability", json!("healthy")).await;
    let mut now = snapshot(&prefix);
    assert!(
        now.remove(&prefix.join("var/agent.pid")).is_some(),
        "the running agent's pid"
    );
    assert_eq!(now, installed);
    second.stop().await;

    // A run whose script is killed alone leaves its agent running, as a
    // closed terminal would: uninstalling stops that agent, which
    // deregisters.
    let mut third = Script::run(&script, &args);
    third
        .wait_printed("the control plane accepted a heartbeat")
        .await;
    third.kill_script_alone().await;
    let status_url = format!("http://127.0.0.1:{port}/api/vdi/cluster/status");
    let status = http()
        .get(&status_url)
        .header("x-cluster-token", crate::common::CLUSTER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200, "the agent outlives its script");
    let mut upgraded = upgrade_under_an_exam(&api, &script, &args, &prefix, &admin).await;
    upgraded.kill_script_alone().await;

    // Uninstall: everything written is gone.
    let status = Command::new("sh")
        .arg(&script)
        .args([
            "--prefix",
            prefix.to_str().unwrap(),
            "--no-systemd",
            "--uninstall",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!prefix.exists(), "left behind: {:?}", snapshot(&prefix));
    let (status, view) = api
        .admin(Method::GET, "/api/vdi/workers/installed-1", None)
        .await;
    assert_eq!(status, 200);
    assert!(view["deregisteredAt"].is_u64(), "not deregistered: {view}");
    assert!(
        http().get(&status_url).send().await.is_err(),
        "the agent still answers after --uninstall"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--upgrade` while an exam whose prewarm lead has begun needs the
/// worker: the change freeze refuses it and the agent is left as it is;
/// forced with a reason, the agent is replaced and restarted, audited.
/// Answers the upgrading script, its agent running.
async fn upgrade_under_an_exam(
    api: &Api,
    script: &Path,
    args: &[String],
    prefix: &Path,
    admin: &str,
) -> Script {
    use vdi_cluster_core::exam::format_rfc3339;
    use vdi_cluster_core::{Clock, SystemClock, Timestamp};
    let now = SystemClock.now().as_millis();
    let at = |min: u64| format_rfc3339(Timestamp(now + min * 60_000));
    // 3 slots bookable on the worker's 4 (10 % headroom).
    let (status, booked) = api
        .admin(
            Method::POST,
            "/api/vdi/exams",
            Some(json!({"examId": "final", "name": "Final", "students": 3,
                "startsAt": at(5), "endsAt": at(65)})),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    // An older agent than the control plane serves (its bytes differ).
    let agent = prefix.join("bin/vdi-cluster");
    let current = std::fs::read(&agent).unwrap();
    let older = prefix.join("bin/vdi-cluster.older");
    std::fs::write(&older, [current.as_slice(), b"\n"].concat()).unwrap();
    std::fs::set_permissions(&older, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&older, &agent).unwrap();

    let mut upgrade: Vec<String> = args.to_vec();
    upgrade.push("--upgrade".into());
    let refused = Command::new("sh")
        .arg(script)
        .args(&upgrade)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VDI_ADMIN_TOKEN", admin)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("the change freeze refuses the upgrade"),
        "{said}"
    );
    assert!(
        said.contains("safeFrom") && said.contains("final"),
        "{said}"
    );
    assert_ne!(std::fs::read(&agent).unwrap(), current, "left as it was");
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(!audit.contains("agent-upgrade"), "{audit}");

    upgrade.extend(["--force".into(), "security fix".into()]);
    let upgraded = Script::run_with(script, &upgrade, &[("VDI_ADMIN_TOKEN", admin)]);
    upgraded
        .wait_printed("the control plane accepted a heartbeat")
        .await;
    assert!(upgraded.printed("the control plane cleared the upgrade of installed-1"));
    assert!(upgraded.printed("installed "));
    assert_eq!(std::fs::read(&agent).unwrap(), current, "the served build");
    wait_worker(api, "installed-1", "availability", json!("healthy")).await;
    let audit = api.get("/api/vdi/audit").await.to_string();
    assert!(audit.contains("agent-upgrade"), "{audit}");
    assert!(audit.contains("freeze-override"), "{audit}");
    assert!(audit.contains("security fix"), "{audit}");
    upgraded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_lab_ca_the_install_script_joins_over_mutual_tls() {
    let ca = crate::tls::TestCa::new();
    ca.issue("cp", "control-plane");
    let cp_port = free_port();
    let mut extra = ca.flags("cp");
    extra.extend([
        "--public-url".to_owned(),
        format!("https://127.0.0.1:{cp_port}"),
    ]);
    let cp = ControlPlane::start_on(
        cp_port,
        CpOptions {
            extra,
            ..CpOptions::default()
        },
    )
    .await;
    let operator = ca.client(None);
    let api = Api::with_http(&cp.url, operator.clone());
    let r = operator
        .post(format!("{}/api/vdi/workers/install-script", cp.url))
        .bearer_auth(crate::common::admin_token())
        .json(&json!({"ttlSec": 600, "code": "installed-tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    let dir = std::env::temp_dir().join(format!("vdi-install-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("install-worker.sh");
    std::fs::write(&script, &text).unwrap();
    let prefix = dir.join("prefix");
    let port = free_port();
    let mut args: Vec<String> = [
        "--prefix",
        prefix.to_str().unwrap(),
        "--no-systemd",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--api-base-url",
        &format!("https://127.0.0.1:{port}"),
        "--lab-ca",
        ca.dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for setting in [
        "VDI_PROVISIONER=simulated",
        "WORKER_TOTAL_CPUS=4",
        "WORKER_TOTAL_MEMORY_MB=4096",
        "WORKER_RESERVED_CPUS=0",
        "WORKER_RESERVED_MEMORY_MB=0",
        "VM_CPU_CORES=1",
        "VM_MEMORY_MB=1024",
        "HEARTBEAT_INTERVAL_SEC=1",
        "HEARTBEAT_BACKOFF_MAX_SEC=1",
        "WORKER_REPORT_USAGE=false",
    ] {
        args.extend(["--set".to_owned(), setting.to_owned()]);
    }

    let mut run = Script::run(&script, &args);
    run.wait_printed("the control plane accepted a heartbeat")
        .await;
    assert!(run.printed("issued "));
    let key = std::fs::metadata(prefix.join("etc/tls/worker.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    wait_worker(&api, "installed-tls", "availability", json!("healthy")).await;
    // The control plane calls the worker over mutual TLS.
    let placed = api.allocate("exam-install-tls", "s1").await;
    assert_eq!(placed["workerCode"], "installed-tls", "{placed}");
    run.stop().await;

    let status = Command::new("sh")
        .arg(&script)
        .args([
            "--prefix",
            prefix.to_str().unwrap(),
            "--no-systemd",
            "--uninstall",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!prefix.exists(), "left behind: {:?}", snapshot(&prefix));
    std::fs::remove_dir_all(&dir).unwrap();
}
