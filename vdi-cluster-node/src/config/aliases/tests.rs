//! The sources' variable names as aliases of ours.

use clap::{CommandFactory, FromArgMatches, Parser};

use super::*;
use crate::config::WorkerArgs;

fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn an_alias_alone_gives_the_canonical_value() {
    let values = resolve_aliases(
        AliasCommand::Serve,
        env_of(&[
            ("WORKER_HEARTBEAT_INTERVAL", "30"),
            ("WORKER_HEARTBEAT_TIMEOUT", "120"),
        ]),
    )
    .unwrap();
    let pairs: Vec<_> = values
        .iter()
        .map(|v| (v.canonical, v.value.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("HEARTBEAT_INTERVAL_SEC", "30"),
            ("WORKER_HEARTBEAT_TTL_SEC", "120")
        ]
    );
}

#[test]
fn a_canonical_name_alone_needs_no_alias() {
    let env = env_of(&[("WORKER_CODE", "w-1"), ("HEARTBEAT_INTERVAL_SEC", "15")]);
    assert!(
        resolve_aliases(AliasCommand::Worker, &env)
            .unwrap()
            .is_empty()
    );
    assert!(
        resolve_aliases(AliasCommand::Serve, &env)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn both_names_with_the_same_value_are_accepted() {
    let env = env_of(&[
        ("WORKER_ID", "w-1"),
        ("WORKER_CODE", " w-1 "),
        ("EXAM_VM_CPUS", "1.5"),
        ("VM_CPU_CORES", "1.50"),
        ("CONTROL_PLANE_ENDPOINT", "cp:9090"),
        ("CONTROL_PLANE_API_BASE", "grpc://cp:9090"),
    ]);
    assert!(
        resolve_aliases(AliasCommand::Worker, env)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn both_names_with_different_values_are_an_error_naming_both() {
    let env = env_of(&[
        ("WORKER_HEARTBEAT_TIMEOUT", "120"),
        ("WORKER_HEARTBEAT_TTL_SEC", "90"),
    ]);
    let e = resolve_aliases(AliasCommand::Serve, env).unwrap_err();
    assert!(e.0.contains("WORKER_HEARTBEAT_TIMEOUT"), "{e}");
    assert!(e.0.contains("WORKER_HEARTBEAT_TTL_SEC"), "{e}");
    assert!(e.0.contains("SkyPanelV2"), "{e}");
}

#[test]
fn an_alias_of_another_command_is_not_read() {
    let env = env_of(&[("WORKER_ID", "a"), ("WORKER_CODE", "b")]);
    assert!(
        resolve_aliases(AliasCommand::Serve, &env)
            .unwrap()
            .is_empty()
    );
    assert!(resolve_aliases(AliasCommand::Worker, &env).is_err());
}

#[test]
fn minicloud_endpoint_is_converted_to_a_grpc_url() {
    let values = resolve_aliases(
        AliasCommand::Worker,
        env_of(&[("CONTROL_PLANE_ENDPOINT", "localhost:9090")]),
    )
    .unwrap();
    assert_eq!(values[0].canonical, "CONTROL_PLANE_API_BASE");
    assert_eq!(values[0].value, "grpc://localhost:9090");
    let e = resolve_aliases(
        AliasCommand::Worker,
        env_of(&[
            ("CONTROL_PLANE_ENDPOINT", "cp:9090"),
            ("CONTROL_PLANE_API_BASE", "http://cp:8080/api"),
        ]),
    )
    .unwrap_err();
    assert!(e.0.contains("CONTROL_PLANE_ENDPOINT"), "{e}");
    assert!(e.0.contains("CONTROL_PLANE_API_BASE"), "{e}");
}

#[derive(Debug, Parser)]
struct Wrapper {
    #[command(flatten)]
    args: WorkerArgs,
}

fn parse(env: impl Fn(&str) -> Option<String>, argv: &[&str]) -> WorkerArgs {
    let values = resolve_aliases(AliasCommand::Worker, env).unwrap();
    let cmd = with_aliases(Wrapper::command(), &values);
    let matches = cmd.try_get_matches_from(argv).unwrap();
    Wrapper::from_arg_matches(&matches).unwrap().args
}

const TOKEN: &str = "cluster-token-0123456789abcdef0123456789";

#[test]
fn aliases_become_the_flags_defaults() {
    let env = env_of(&[
        ("WORKER_ID", "worker-9"),
        ("CONTROL_PLANE_ENDPOINT", "cp:9090"),
        ("WORKER_HEARTBEAT_INTERVAL", "30"),
        ("EXAM_VM_MEMORY_MB", "4096"),
    ]);
    let args = parse(&env, &["worker", "--cluster-token", TOKEN]);
    assert_eq!(args.code, "worker-9", "a required flag is met by its alias");
    assert_eq!(args.control_plane, "grpc://cp:9090");
    assert_eq!(args.heartbeat_interval_sec, 30.0);
    assert_eq!(args.vm_memory_mb, Some(4096));
    let config = args.resolve_with(|_| None).unwrap();
    assert_eq!(config.capacity.vm_memory_mb, 4096);
    // A flag on the command line wins over the alias.
    let args = parse(&env, &["worker", "--cluster-token", TOKEN, "--code", "w-2"]);
    assert_eq!(args.code, "w-2");
}
