//! Command line: `vdi-cluster serve` (the control plane), `vdi-cluster
//! worker` (a worker node, options in [`WorkerArgs`]), `vdi-cluster demo`
//! (a whole cluster on one machine, [`DemoArgs`]), `vdi-cluster token`
//! and `vdi-cluster network-rules` (an exam desktop's firewall,
//! [`NetworkRulesArgs`]),
//! with the exam platform's environment variables as fallbacks of every flag
//! and the other sources' names accepted as aliases
//! ([`Cli::try_parse_with_aliases`]).

use std::ffi::OsString;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use vdi_cluster_node::config::{AliasCommand, resolve_aliases, with_aliases};

use crate::auth::Role;
pub use crate::demo::DemoArgs;
pub use crate::transfer::StoreArgs;
pub use vdi_cluster_node::config::WorkerArgs;
pub use vdi_cluster_node::network_policy::NetworkRulesArgs;

/// `vdi-cluster`: the control plane of a remote-desktop exam platform.
#[derive(Debug, Parser)]
#[command(name = "vdi-cluster", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on standard error: `text`, or `json` (one object per
    /// line, for log collectors). Colours only on a terminal, never with
    /// `NO_COLOR` set.
    #[arg(long, global = true, env = "VDI_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// Why a command line was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Clap's own answer (also `--help` and `--version`).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// An alias and its canonical variable disagree.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Cli {
    /// Parses `args` with the source systems' variable names, read through
    /// `env`, as aliases of the flags' variables (the table is
    /// [`ENV_ALIASES`](vdi_cluster_node::config::ENV_ALIASES)). An alias
    /// and its canonical variable set to different values is an error for
    /// the subcommand that reads them, naming both.
    pub fn try_parse_with_aliases(
        args: impl IntoIterator<Item = impl Into<OsString>>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CliError> {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut cmd = Self::command();
        let mut conflicts = Vec::new();
        for which in [AliasCommand::Serve, AliasCommand::Worker] {
            match resolve_aliases(which, &env) {
                Ok(values) => {
                    cmd = cmd.mut_subcommand(which.name(), |sub| with_aliases(sub, &values));
                }
                Err(e) => conflicts.push((which.name(), ConfigError(e.0))),
            }
        }
        let parsed = cmd.try_get_matches_from(&args);
        let running = |name: &str| match &parsed {
            Ok(matches) => matches.subcommand_name() == Some(name),
            // A conflict left out its subcommand's aliases: it explains
            // clap's refusal better than clap can.
            Err(_) => args.iter().skip(1).any(|arg| arg == name),
        };
        if let Some((_, e)) = conflicts.into_iter().find(|(name, _)| running(name)) {
            return Err(e.into());
        }
        Ok(Self::from_arg_matches(&parsed?)?)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane (HTTP API, background reconcile).
    Serve(Box<ServeArgs>),
    /// Run a worker node: the worker-side API and the heartbeat agent.
    Worker(Box<WorkerArgs>),
    /// Start a control plane and simulated workers on this machine, print
    /// the URLs and an ADMIN token; Ctrl-C stops everything.
    Demo(DemoArgs),
    /// Print a signed JWT (HS256 with JWT_SECRET) for curl and scripts.
    Token(TokenArgs),
    /// Copy a whole store to another: `export` a dump of it, `import` one
    /// (the upgrade and migration path between backends, and a backup
    /// every backend reads).
    Store(StoreArgs),
    /// Apply, remove or print the nftables rules that restrict one exam
    /// desktop to its network policy (run by the provisioning program,
    /// with the policy in VDI_NETWORK_POLICY).
    NetworkRules(NetworkRulesArgs),
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "must be ADMIN, PROCTOR, STUDENT or SERVICE".to_owned())
}

/// A configuration that parses but does not hold together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Options of `vdi-cluster token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The secret to sign with.
    #[arg(
        long,
        env = "JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: String,

    /// Subject (`sub`): the user id, audited as the actor.
    #[arg(long, default_value = "admin")]
    pub sub: String,

    /// Role; repeat for several (ADMIN, PROCTOR, STUDENT, or SERVICE for
    /// the exam application).
    #[arg(long = "role", default_value = "ADMIN", value_parser = parse_role, action = ArgAction::Append)]
    pub roles: Vec<Role>,

    /// Lifetime, seconds.
    #[arg(long, default_value_t = 3_600,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl_sec: u64,

    /// `iss` claim.
    #[arg(long, env = "JWT_ISSUER")]
    pub issuer: Option<String>,

    /// `aud` claim.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub audience: Option<String>,
}

mod resolve;
mod serve;
mod webhooks;
pub use serve::ServeArgs;
pub use webhooks::WebhookArgs;

#[cfg(test)]
mod tests;
