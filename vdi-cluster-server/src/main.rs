//! The `vdi-cluster` binary: `vdi-cluster serve` runs the control plane;
//! `vdi-cluster worker` a worker node; `vdi-cluster demo` a control plane
//! and simulated workers on this machine; `vdi-cluster token` prints a
//! signed JWT; `vdi-cluster store export | import` copies a whole store;
//! `vdi-cluster network-rules` applies an exam desktop's network policy.
//! Run `vdi-cluster --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use vdi_cluster_server::config::{Cli, CliError, Command, LogFormat};
use vdi_cluster_server::{demo, server, transfer};

/// The binary allocates with jemalloc: an allocation's request path builds
/// and drops buffers of a few kilobytes on every call, which jemalloc's
/// per-thread caches serve without the locked bins glibc's malloc falls
/// back to (BENCHMARKS.md, "the allocator"). The library leaves the
/// choice to its embedder.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn init_tracing(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init();
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli =
        match Cli::try_parse_with_aliases(std::env::args_os(), |name| std::env::var(name).ok()) {
            Ok(cli) => cli,
            Err(CliError::Clap(e)) => e.exit(),
            Err(CliError::Config(e)) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
    init_tracing(
        match cli.command {
            Command::Demo(_) => demo::DEFAULT_LOG_FILTER,
            _ => "info",
        },
        cli.log_format,
    );
    match cli.command {
        Command::Serve(args) => match server::serve(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "vdi-cluster serve failed");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Worker(args) => match vdi_cluster_node::run(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "vdi-cluster worker failed");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Demo(args) => match demo::run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "vdi-cluster demo failed");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Store(args) => {
            let (input, output) = (std::io::stdin().lock(), std::io::stdout().lock());
            match transfer::run(&args.action, input, output).await {
                Ok(summary) => {
                    eprint!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token(args) => match server::token(&args) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::NetworkRules(args) => match vdi_cluster_node::network_policy::run(&args).await {
            Ok(report) => {
                println!("{}", report.trim_end());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
