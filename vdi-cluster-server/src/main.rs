//! The `vdi-cluster` binary: `vdi-cluster serve` runs the control plane;
//! `vdi-cluster worker` a worker node; `vdi-cluster demo` a control plane
//! and simulated workers on this machine; `vdi-cluster token` prints a
//! signed JWT. Run `vdi-cluster --help`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use vdi_cluster_server::config::{Cli, Command};
use vdi_cluster_server::{demo, server};

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(match cli.command {
        Command::Demo(_) => demo::DEFAULT_LOG_FILTER,
        _ => "info",
    });
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
    }
}
