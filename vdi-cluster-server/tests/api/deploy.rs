//! The deployment samples in `examples/deploy/` work as written: every
//! variable of the env files is one the binary reads (or one the sample
//! provisioning program reads), the values parse, and `provision.sh`
//! prints the JSON the worker expects.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{CommandFactory, Parser};
use serde_json::Value;
use vdi_cluster_server::config::{Cli, Command as Sub};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/deploy")
}

/// `NAME=value` lines, commented-out ones included (`# NAME=value`).
fn variables(file: &str, commented: bool) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let line = match line.strip_prefix("# ") {
            Some(rest) if commented => rest,
            Some(_) => continue,
            None if line.starts_with('#') => continue,
            None => line,
        };
        if let Some((name, value)) = line.split_once('=')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            out.insert(name.to_owned(), value.to_owned());
        }
    }
    out
}

/// Environment name → long flag of a subcommand's arguments.
fn flags_of(subcommand: &str) -> BTreeMap<String, String> {
    let cli = Cli::command();
    let sub = cli.find_subcommand(subcommand).unwrap();
    sub.get_arguments()
        .filter_map(|a| Some((a.get_env()?.to_str()?.to_owned(), a.get_long()?.to_owned())))
        .collect()
}

/// The env file as command-line flags (empty values left out).
fn argv(subcommand: &str, vars: &BTreeMap<String, String>) -> Vec<String> {
    let flags = flags_of(subcommand);
    let mut argv = vec!["vdi-cluster".to_owned(), subcommand.to_owned()];
    for (name, value) in vars {
        if let Some(long) = flags.get(name)
            && !value.is_empty()
        {
            argv.push(format!("--{long}"));
            argv.push(value.clone());
        }
    }
    argv
}

#[test]
fn the_worker_env_file_is_read_as_written() {
    const READ_OTHERWISE: &[&str] = &[
        "WORKER_PUBLIC_PORT",
        "EXAM_VM_CPUS",
        "EXAM_VM_MEMORY_MB",
        "RUST_LOG",
        // Read by provision.sh.
        "EXAM_IMAGE_NAME",
        "EXAM_VM_USERNAME",
        "EXAM_PUBLIC_HOST",
    ];
    let flags = flags_of("worker");
    for name in variables("worker.env", true).keys() {
        assert!(
            flags.contains_key(name) || READ_OTHERWISE.contains(&name.as_str()),
            "worker.env sets {name}, which nothing reads"
        );
    }
    let vars = variables("worker.env", false);
    let cli = Cli::try_parse_from(argv("worker", &vars)).unwrap();
    let Sub::Worker(args) = cli.command else {
        panic!("worker")
    };
    let config = args.resolve_with(|name| vars.get(name).cloned()).unwrap();
    assert_eq!(config.code.as_str(), "worker-217-216-33-134");
    // The runbook's network policy: eleven networks, the origin, strict.
    let policy = &config.network_policy;
    assert!(policy.restrict_internet && policy.enforce_strict);
    assert_eq!(policy.allowed_cidrs.len(), 11);
    assert_eq!(policy.allowed_domains, ["sot.umtoj.edu.vn"]);
    assert!(policy.allows("203.210.213.198".parse().unwrap()));
    assert_eq!(config.listen.to_string(), "0.0.0.0:3000");
    assert_eq!(
        config.description.api_base_url,
        "http://217.216.33.134:3000"
    );
    assert_eq!(config.capacity.vm_cpus, 1.5);
    // The runbook's node: 8 vCPU / 12 GiB → 4 sessions.
    assert_eq!(config.capacity.spec(8.0, 12_288).unwrap().max_sessions(), 4);
}

#[test]
fn the_control_plane_env_file_is_read_as_written() {
    let flags = flags_of("serve");
    for name in variables("control-plane.env", true).keys() {
        assert!(
            flags.contains_key(name) || name == "RUST_LOG",
            "control-plane.env sets {name}, which nothing reads"
        );
    }
    let vars = variables("control-plane.env", false);
    let cli = Cli::try_parse_from(argv("serve", &vars)).unwrap();
    let Sub::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert!(args.service_config().is_ok());
    args.check_secrets().unwrap();
    assert!(!args.allow_anonymous_heartbeats);
    assert_eq!(args.store, "redis://127.0.0.1:6379");
}

fn stub_docker(dir: &Path) {
    let path = dir.join("docker");
    std::fs::write(
        &path,
        r#"#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls"
case "$1" in
  inspect) [ "$2" = "-f" ] || exit 1; echo 172.17.0.5 ;;
  run) echo 0123456789ab ;;
  port) echo "0.0.0.0:49153"; echo "[::]:49153" ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A `vdi-cluster` that records its calls and, with `STUB_RULES_FAIL`
/// set, fails as `network-rules apply` does under a strict policy.
fn stub_agent(dir: &Path) -> PathBuf {
    let path = dir.join("vdi-cluster-stub");
    std::fs::write(
        &path,
        r#"#!/bin/sh
echo "vdi-cluster $*" >> "$(dirname "$0")/calls"
[ -z "${STUB_RULES_FAIL:-}" ] || [ "$2" != apply ] || exit 1
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn provision(dir: &Path, action: &str, machine: &str) -> (bool, String) {
    provision_with(dir, action, machine, &[])
}

fn provision_with(dir: &Path, action: &str, machine: &str, env: &[(&str, &str)]) -> (bool, String) {
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg(deploy_dir().join("provision.sh"))
        .env("PATH", path)
        .env("VDI_ACTION", action)
        .env("VDI_WORKER_CODE", "w1")
        .env("VDI_EXAM_ID", "exam 1")
        .env("VDI_USER_ID", "an\"a")
        .env("VDI_MACHINE", machine)
        .env("EXAM_PUBLIC_HOST", "203.0.113.20")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_sample_provisioning_program_prints_what_the_worker_expects() {
    let dir = std::env::temp_dir().join(format!("vdi-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    stub_docker(&dir);

    let (ok, out) = provision(&dir, "allocate", "");
    assert!(ok, "{out}");
    let session: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(session["port"], 49153);
    assert_eq!(session["host"], "203.0.113.20");
    assert!(
        session["container"]
            .as_str()
            .unwrap()
            .starts_with("vdi-exam_1_an_a-")
    );

    let (ok, out) = provision(&dir, "prewarm", "");
    assert!(ok, "{out}");
    let machine: Value = serde_json::from_str(out.trim()).unwrap();
    let warm = machine["container"].as_str().unwrap().to_owned();
    let (ok, out) = provision(&dir, "allocate", &machine.to_string());
    assert!(ok, "{out}");
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
    assert!(calls.contains(&format!("rename {warm} ")), "{calls}");

    assert!(provision(&dir, "release", "").0);
    assert!(provision(&dir, "discard", &machine.to_string()).0);
    assert!(!provision(&dir, "reboot", "").0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_sample_provisioning_program_restricts_each_desktop() {
    let dir = std::env::temp_dir().join(format!("vdi-deploy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    stub_docker(&dir);
    let agent = stub_agent(&dir);
    let policy = r#"{"restrictInternet":true,"allowedIps":["10.0.0.7"]}"#;
    let env = [
        ("VDI_NETWORK_POLICY", policy),
        ("VDI_CLUSTER_BIN", agent.to_str().unwrap()),
    ];
    let calls = || std::fs::read_to_string(dir.join("calls")).unwrap();

    let (ok, out) = provision_with(&dir, "prewarm", "", &env);
    assert!(ok, "{out}");
    assert!(
        calls().contains("vdi-cluster network-rules apply --address 172.17.0.5"),
        "{}",
        calls()
    );
    assert!(provision_with(&dir, "allocate", "", &env).0);
    assert!(provision_with(&dir, "release", "", &env).0);
    assert!(
        calls().contains("vdi-cluster network-rules remove --address 172.17.0.5"),
        "{}",
        calls()
    );

    // Strict and the rules cannot be applied: no desktop, the action fails.
    let removals = || calls().lines().filter(|l| l.starts_with("rm -f")).count();
    let before = removals();
    let failing = [env[0], env[1], ("STUB_RULES_FAIL", "1")];
    let (ok, out) = provision_with(&dir, "allocate", "", &failing);
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(
        removals(),
        before + 1,
        "the container is removed: {}",
        calls()
    );
    std::fs::remove_dir_all(dir).unwrap();
}
