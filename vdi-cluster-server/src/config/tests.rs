//! Command-line parsing and the checks of `serve`'s options.

use clap::CommandFactory;

use std::time::Duration;

use vdi_cluster_core::FailurePolicy;

use super::*;

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn defaults_are_the_exam_platforms() {
    let cli = Cli::try_parse_from(["vdi-cluster", "serve"]).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(args.store, "memory");
    let c = args.service_config().unwrap();
    assert_eq!(c.retry_count, 3);
    assert_eq!(c.worker_call_timeout, Duration::from_millis(15_000));
    assert_eq!(c.sticky_ttl, Duration::from_secs(21_600));
    assert_eq!(c.scan_count, 200);
    assert_eq!(c.live_session_grace, Duration::from_secs(60));
    assert!(c.pacing.enabled, "starts are paced by default");
    assert!(args.background_config().reconcile_enabled);
}

#[test]
fn paced_starts_are_turned_off_by_false() {
    for off in ["false", "0", "no", "off"] {
        let cli = Cli::try_parse_from(["vdi-cluster", "serve", "--pace-starts", off]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert!(!args.service_config().unwrap().pacing.enabled, "{off}");
    }
    let cli = Cli::try_parse_from(["vdi-cluster", "serve", "--pace-starts", "true"]).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert!(args.service_config().unwrap().pacing.enabled);
    assert!(Cli::try_parse_from(["vdi-cluster", "serve", "--pace-starts", "maybe"]).is_err());
}

#[test]
fn flags_override_and_validate() {
    let cli = Cli::try_parse_from([
        "vdi-cluster",
        "serve",
        "--listen",
        "0.0.0.0:9000",
        "--dispatch-cleanup-enabled",
        "false",
        "--failure-policy",
        "manual",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert!(!args.background_config().reconcile_enabled);
    assert_eq!(args.failure_policy, FailurePolicy::Manual);
    assert!(Cli::try_parse_from(["vdi-cluster", "serve", "--allocate-retry-count", "0"]).is_err());
    assert!(
        Cli::try_parse_from(["vdi-cluster", "serve", "--live-session-grace-sec", "0"]).is_err()
    );
    let cli =
        Cli::try_parse_from(["vdi-cluster", "serve", "--live-session-grace-sec", "10"]).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert_eq!(
        args.service_config().unwrap().live_session_grace,
        Duration::from_secs(10)
    );
    assert!(
        Cli::try_parse_from(["vdi-cluster", "serve", "--scheduling-policy", "random"]).is_err()
    );
    let cli = Cli::try_parse_from(["vdi-cluster", "serve", "--heartbeat-ttl-sec", "700"]).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert!(args.service_config().is_err());
}

#[test]
fn short_secrets_are_refused_with_their_name() {
    let long = "0123456789abcdef0123456789abcdef";
    for flag in [
        "--jwt-secret",
        "--worker-cluster-token",
        "--worker-heartbeat-token",
    ] {
        let cli = Cli::try_parse_from(["vdi-cluster", "serve", flag, "short"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let e = args.check_secrets().unwrap_err().to_string();
        let variable = match flag {
            "--jwt-secret" => "JWT_SECRET",
            "--worker-cluster-token" => "WORKER_CLUSTER_TOKEN",
            _ => "WORKER_HEARTBEAT_TOKEN",
        };
        assert!(e.contains(variable), "{e}");
        let cli = Cli::try_parse_from(["vdi-cluster", "serve", flag, long]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        args.check_secrets().unwrap();
    }
}

#[test]
fn anonymous_heartbeats_are_off_unless_asked_for() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["vdi-cluster", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => args.allow_anonymous_heartbeats,
            _ => panic!("serve"),
        }
    };
    assert!(!parse(&[]));
    assert!(parse(&["--allow-anonymous-heartbeats"]));
    assert!(!parse(&["--allow-anonymous-heartbeats", "false"]));
}

#[test]
fn throttle_flags() {
    let cli = Cli::try_parse_from([
        "vdi-cluster",
        "serve",
        "--auth-failure-limit",
        "5",
        "--trusted-proxy",
        "10.0.0.1,::1",
        "--trusted-proxy",
        "10.0.0.2",
    ])
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    let t = args.throttle_config();
    assert_eq!(t.max_failures, 5);
    assert_eq!(t.window, Duration::from_secs(60));
    assert_eq!(t.trusted_proxies.len(), 3);
    assert!(
        Cli::try_parse_from(["vdi-cluster", "serve", "--trusted-proxy", "proxy.local"]).is_err()
    );
}

#[test]
fn tls_flags_are_checked_naming_the_flag() {
    use vdi_cluster_node::tls::Tls;
    let serve = |extra: &[&str]| {
        let mut argv = vec!["vdi-cluster", "serve"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Serve(args) => args,
            _ => panic!("serve"),
        })
    };
    // A certificate without its key (and the reverse) does not parse.
    assert!(serve(&["--tls-cert", "cp.crt"]).is_err());
    assert!(serve(&["--tls-key", "cp.key"]).is_err());
    // Mutual TLS without a CA, or without a certificate of its own.
    let args = serve(&[
        "--tls-cert",
        "a",
        "--tls-key",
        "b",
        "--tls-require-client-cert",
    ])
    .unwrap();
    let err = args.tls.settings().unwrap_err();
    assert_eq!(err.flag(), "--tls-require-client-cert");
    let args = serve(&["--tls-ca", "ca.crt", "--tls-require-client-cert"]).unwrap();
    assert_eq!(
        args.tls.settings().unwrap_err().flag(),
        "--tls-require-client-cert"
    );
    // Files that are not there: the start-up error names the flag.
    let missing = std::env::temp_dir().join("vdi-tls-missing-file.pem");
    let missing = missing.to_str().unwrap();
    let args = serve(&["--tls-cert", missing, "--tls-key", missing]).unwrap();
    let err = Tls::load(&args.tls.settings().unwrap()).unwrap_err();
    assert_eq!(err.flag(), "--tls-cert");
    assert!(
        err.to_string().starts_with("--tls-cert: cannot use"),
        "{err}"
    );
    assert!(err.to_string().contains(missing), "{err}");
    let args = serve(&["--tls-ca", missing]).unwrap();
    let err = Tls::load(&args.tls.settings().unwrap()).unwrap_err();
    assert_eq!(err.flag(), "--tls-ca");
    // The same flags on `worker`.
    let cli = Cli::try_parse_from([
        "vdi-cluster",
        "worker",
        "--code",
        "w1",
        "--cluster-token",
        "cluster-token-0123456789abcdef0123456789",
        "--tls-ca",
        missing,
        "--tls-require-client-cert",
    ])
    .unwrap();
    let Command::Worker(args) = cli.command else {
        panic!("worker")
    };
    let err = args.resolve().unwrap_err();
    assert!(
        err.to_string().contains("--tls-require-client-cert"),
        "{err}"
    );
}

fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn every_alias_names_a_variable_its_command_reads() {
    use vdi_cluster_node::config::ENV_ALIASES;
    let cli = Cli::command();
    for row in ENV_ALIASES {
        for which in row.commands {
            let sub = cli.find_subcommand(which.name()).unwrap();
            assert!(
                sub.get_arguments()
                    .any(|a| a.get_env().is_some_and(|e| e == row.canonical)),
                "{} has no flag read from {}",
                which.name(),
                row.canonical
            );
        }
    }
}

#[test]
fn skypanel_variables_configure_serve() {
    let env = env_of(&[
        ("WORKER_HEARTBEAT_INTERVAL", "30"),
        ("WORKER_HEARTBEAT_TIMEOUT", "180"),
    ]);
    let cli = Cli::try_parse_with_aliases(["vdi-cluster", "serve"], env).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    let c = args.service_config().unwrap();
    assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(c.heartbeat_ttl, Duration::from_secs(180));
    // A flag still wins over an alias.
    let cli = Cli::try_parse_with_aliases(
        ["vdi-cluster", "serve", "--heartbeat-ttl-sec", "60"],
        env_of(&[("WORKER_HEARTBEAT_TIMEOUT", "180")]),
    )
    .unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("serve")
    };
    assert_eq!(args.heartbeat_ttl_sec, 60);
}

#[test]
fn a_conflict_stops_only_the_command_that_reads_it() {
    let env = env_of(&[("WORKER_ID", "w-1"), ("WORKER_CODE", "w-2")]);
    assert!(Cli::try_parse_with_aliases(["vdi-cluster", "serve"], &env).is_ok());
    let e = Cli::try_parse_with_aliases(
        [
            "vdi-cluster",
            "worker",
            "--cluster-token",
            "x".repeat(40).as_str(),
        ],
        &env,
    )
    .unwrap_err();
    let CliError::Config(e) = e else {
        panic!("{e}")
    };
    assert!(
        e.0.contains("WORKER_ID") && e.0.contains("WORKER_CODE"),
        "{e}"
    );
}

#[test]
fn minicloud_variables_configure_worker() {
    let env = env_of(&[
        ("WORKER_ID", "worker-1"),
        ("CONTROL_PLANE_ENDPOINT", "localhost:9090"),
    ]);
    let token = "x".repeat(40);
    let cli = Cli::try_parse_with_aliases(
        ["vdi-cluster", "worker", "--cluster-token", token.as_str()],
        env,
    )
    .unwrap();
    let Command::Worker(args) = cli.command else {
        panic!("worker")
    };
    let c = args.resolve_with(|_| None).unwrap();
    assert_eq!(c.code.to_string(), "worker-1");
    assert_eq!(c.control_planes(), ["grpc://localhost:9090"]);
}
