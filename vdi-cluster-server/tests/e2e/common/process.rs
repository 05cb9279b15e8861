//! Child processes of the built binary: spawned with a clean environment,
//! stdout collected line by line, stderr to a log file; a free port.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use super::{BIN, DEADLINE};

fn log_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("vdi-cluster-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(name: &str, args: &[String]) -> Self {
        let log = log_dir().join(format!("{name}-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().unwrap();
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
            stdout,
        }
    }

    fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("running");
        Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap()
    }

    pub fn signal(&self, signal: Signal) {
        kill_process(self.pid(), signal)
            .unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.name));
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let exited = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let Ok(status) = exited else {
            panic!("{} did not exit before the deadline", self.name);
        };
        self.child = None;
        status
    }

    /// Waits until the process's log (stderr) has a line containing
    /// `needle`.
    pub async fn wait_log(&self, needle: &str) {
        let logged = tokio::time::timeout(DEADLINE, async {
            while !std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(needle)) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            logged.is_ok(),
            "{} logged no line with {needle:?}; log: {}",
            self.name,
            self.log_tail(40)
        );
    }

    /// The first stdout line containing `needle`.
    pub async fn wait_line(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(line) = self
                    .stdout
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|l| l.contains(needle))
                {
                    return line.clone();
                }
                if let Some(child) = self.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    panic!(
                        "{} exited ({status}) before printing {needle:?}; log: {}",
                        self.name,
                        self.log_tail(40)
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "{} printed no line with {needle:?}; log: {}",
                self.name,
                self.log_tail(40)
            )
        })
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (log {}) ----\n{}",
                self.name,
                self.log.display(),
                self.log_tail(60)
            );
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(super) fn url_in(line: &str) -> String {
    let start = line
        .find("https://")
        .or_else(|| line.find("http://"))
        .expect("a URL");
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches([',', ';', ')'])
        .to_owned()
}
