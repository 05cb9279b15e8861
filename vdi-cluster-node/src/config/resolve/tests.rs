//! Resolving the worker's flags into its configuration.

use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Wrapper {
    #[command(flatten)]
    args: WorkerArgs,
}

const TOKEN: &str = "cluster-token-0123456789abcdef0123456789";

#[test]
fn short_secrets_are_refused_with_their_name() {
    let e = Wrapper::try_parse_from(["worker", "--code", "w", "--cluster-token", "short"])
        .unwrap()
        .args
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(e.0.contains("WORKER_CLUSTER_TOKEN"), "{e}");
    let e = parse(&["--worker-token", "short"])
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(e.0.contains("WORKER_HEARTBEAT_TOKEN"), "{e}");
}

fn parse(extra: &[&str]) -> WorkerArgs {
    let mut argv = vec![
        "worker",
        "--code",
        "worker-node-2",
        "--cluster-token",
        TOKEN,
    ];
    argv.extend_from_slice(extra);
    Wrapper::try_parse_from(argv).unwrap().args
}

#[test]
fn runbook_defaults() {
    let c = parse(&[]).resolve_with(|_| None).unwrap();
    assert_eq!(c.capacity.reserved_cpus, 1.0);
    assert_eq!(c.capacity.reserved_memory_mb, 1024);
    assert_eq!(c.capacity.vm_cpus, 1.5);
    assert_eq!(c.capacity.vm_memory_mb, 2048);
    assert_eq!(c.heartbeat_interval, Duration::from_secs(20));
    assert_eq!(c.control_plane, "http://127.0.0.1:8080/api");
    assert_eq!(c.description.name, "worker-node-2");
    assert!(c.deregister_on_exit);
    assert!(matches!(c.provisioner, ProvisionerConfig::Simulated { .. }));
    // The runbook's node: 8 vCPU / 12 GiB → 4 slots.
    let spec = c.capacity.spec(8.0, 12_288).unwrap();
    assert_eq!(spec.max_sessions(), 4);
}

#[test]
fn runbook_public_port_sets_the_listen_address() {
    let c = parse(&[]).resolve_with(|_| None).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    let env = |name: &str| (name == "WORKER_PUBLIC_PORT").then(|| "3001".to_owned());
    let e = parse(&[]).resolve_with(env).unwrap_err();
    assert!(e.to_string().contains("WORKER_API_BASE_URL"), "{e}");
    let c = parse(&["--api-base-url", "http://217.216.33.134:3001"])
        .resolve_with(env)
        .unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:3001");
    let c = parse(&["--listen", "127.0.0.1:0"])
        .resolve_with(env)
        .unwrap();
    assert_eq!(c.listen.port(), 0, "WORKER_LISTEN wins");
}

#[test]
fn bad_values_are_refused_with_their_name() {
    let e = parse(&["--vm-cpus", "0"])
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(e.to_string().contains("vmCpuCores"), "{e}");
    let e = parse(&["--listen", "0.0.0.0:3000"])
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(e.to_string().contains("WORKER_API_BASE_URL"), "{e}");
    let e = parse(&["--control-plane", "ftp://x"])
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(e.to_string().contains("CONTROL_PLANE_API_BASE"), "{e}");
    let e = parse(&["--provisioner", "command"])
        .resolve_with(|_| None)
        .unwrap_err();
    assert!(e.to_string().contains("VDI_PROVISION_COMMAND"), "{e}");
    assert!(
        parse(&["--sim-failure-rate", "2"])
            .resolve_with(|_| None)
            .is_err()
    );
    assert!(
        parse(&["--heartbeat-interval-sec", "0"])
            .resolve_with(|_| None)
            .is_err()
    );
    let mut args = parse(&[]);
    args.code = "bad code".into();
    let e = args.resolve_with(|_| None).unwrap_err();
    assert!(e.to_string().contains("WORKER_CODE"), "{e}");
}

#[test]
fn a_grpc_control_plane_is_one_url() {
    let c = parse(&["--control-plane", "grpc://127.0.0.1:9090/"])
        .resolve()
        .unwrap();
    assert_eq!(c.control_planes(), ["grpc://127.0.0.1:9090"]);
    for bad in [
        "grpc://cp-a:9090,grpc://cp-b:9090",
        "http://cp-a/api,grpc://cp-b:9090",
        "grpc://cp-a:9090/api",
    ] {
        let e = parse(&["--control-plane", bad])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("grpc://host:port"), "{bad}: {e}");
    }
}

#[test]
fn several_control_planes_are_a_comma_separated_list() {
    let c = parse(&["--control-plane", "http://cp-a:8080/api/"])
        .resolve_with(|_| None)
        .unwrap();
    assert_eq!(c.control_plane, "http://cp-a:8080/api");
    assert_eq!(c.control_planes(), ["http://cp-a:8080/api"]);
    let c = parse(&[
        "--control-plane",
        " http://cp-a:8080/api , https://cp-b.example.edu.vn/api/",
    ])
    .resolve_with(|_| None)
    .unwrap();
    assert_eq!(
        c.control_planes(),
        ["http://cp-a:8080/api", "https://cp-b.example.edu.vn/api"]
    );
    // Each entry is checked; the error names the variable and the entry.
    let table = [
        (
            "http://cp-a/api,ftp://cp-b/api",
            "(entry 2 of 2)",
            "ftp://cp-b/api",
        ),
        ("cp-a/api,http://cp-b/api", "(entry 1 of 2)", "cp-a/api"),
        (
            "http://cp-a/api,,http://cp-b/api",
            "(entry 2 of 3) is empty",
            "",
        ),
        ("http://cp-a/api,", "(entry 2 of 2) is empty", ""),
        (
            "http://cp-a/api,http://CP-A/api/",
            "(entry 2 of 2) repeats",
            "http://CP-A/api",
        ),
    ];
    for (list, entry, got) in table {
        let e = parse(&["--control-plane", list])
            .resolve_with(|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CONTROL_PLANE_API_BASE"), "{e}");
        assert!(e.contains(entry), "{e}");
        assert!(e.contains(got), "{e}");
    }
    // A single bad URL is reported as before.
    let e = parse(&["--control-plane", "ftp://x"])
        .resolve_with(|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("CONTROL_PLANE_API_BASE must be"), "{e}");
}

#[test]
fn labels_capabilities_and_command() {
    let c = parse(&[
        "--label",
        "rack=a1",
        "--capability",
        "gpu",
        "--provision-command",
        "/usr/local/bin/vm",
        "--api-base-url",
        "http://10.0.0.5:3000/",
    ])
    .resolve_with(|_| None)
    .unwrap();
    assert_eq!(
        c.description.labels.get("rack").map(String::as_str),
        Some("a1")
    );
    assert!(c.description.capabilities.contains("gpu"));
    assert_eq!(c.description.api_base_url, "http://10.0.0.5:3000");
    assert!(matches!(c.provisioner, ProvisionerConfig::Command { .. }));
}

#[test]
fn the_grpc_worker_service_is_off_unless_asked_for() {
    let c = parse(&[]).resolve_with(|_| None).unwrap();
    assert_eq!(c.grpc_listen, None);
    let c = parse(&["--grpc-listen", "127.0.0.1:9091"])
        .resolve_with(|_| None)
        .unwrap();
    assert_eq!(c.grpc_listen.map(|a| a.port()), Some(9091));
}
