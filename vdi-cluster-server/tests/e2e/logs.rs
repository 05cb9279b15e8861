//! Logs an operator's tooling can read: `--log-format json` writes one JSON
//! object per line; the text format writes no terminal colour codes when
//! standard error is not a terminal (here: a file), even without
//! `NO_COLOR`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{BIN, CLUSTER_TOKEN, JWT_SECRET, free_port};

/// Runs `serve` with `extra` flags, stderr into a file, until it has
/// logged its first lines; returns them.
fn serve_log(extra: &[&str]) -> String {
    let log = tempfile_path();
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--jwt-secret", JWT_SECRET, "--allow-anonymous-heartbeats"])
        .args(["--worker-cluster-token", CLUSTER_TOKEN])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&log);
    assert!(text.lines().count() >= 2, "serve logged nothing: {text}");
    text
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "vdi-cluster-log-{}.log",
        uuid::Uuid::new_v4().simple()
    ))
}

#[test]
fn json_logs_are_one_object_per_line() {
    let text = serve_log(&["--log-format", "json"]);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"].is_object(), "{line}");
    }
    assert!(!text.contains(JWT_SECRET), "a secret in the log");
    assert!(!text.contains(CLUSTER_TOKEN), "a secret in the log");
}

#[test]
fn text_logs_to_a_file_have_no_colour_codes() {
    let text = serve_log(&[]);
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");
    assert!(text.contains("INFO"), "{text}");
}
