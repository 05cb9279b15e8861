//! The source systems' environment variable names accepted as aliases of
//! ours: one table ([`ENV_ALIASES`]) for `vdi-cluster serve` and
//! `vdi-cluster worker`, each row listed on its system's page in
//! `docs/compat/`.
//!
//! An alias is read only when its canonical variable means the same: its
//! value, converted where the source writes it in another form, becomes
//! the canonical flag's default, so a flag on the command line and the
//! canonical variable keep their precedence. An alias and its canonical
//! variable both set to different values is a start-up error naming both.
//!
//! ```
//! use vdi_cluster_node::config::{resolve_aliases, AliasCommand};
//!
//! let env = |name: &str| (name == "WORKER_ID").then(|| "worker-7".to_owned());
//! let values = resolve_aliases(AliasCommand::Worker, env).unwrap();
//! assert_eq!(values[0].canonical, "WORKER_CODE");
//! assert_eq!(values[0].value, "worker-7");
//! ```

use super::ConfigError;

/// The subcommand an alias applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasCommand {
    /// `vdi-cluster serve`, the control plane.
    Serve,
    /// `vdi-cluster worker`, the node agent.
    Worker,
}

impl AliasCommand {
    /// The subcommand's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Serve => "serve",
            Self::Worker => "worker",
        }
    }
}

/// How an alias's value becomes the canonical variable's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// The same value in the same unit.
    Same,
    /// minicloud's `host:port` of the control plane's gRPC service becomes
    /// `grpc://host:port`; a value that already names a scheme is kept.
    GrpcEndpoint,
}

impl Conversion {
    fn apply(self, value: &str) -> String {
        match self {
            Self::Same => value.to_owned(),
            Self::GrpcEndpoint if value.contains("://") => value.to_owned(),
            Self::GrpcEndpoint => format!("grpc://{value}"),
        }
    }
}

/// One source system's variable accepted for one of ours.
#[derive(Debug, Clone, Copy)]
pub struct EnvAlias {
    /// The source system, as `docs/compat/` names it.
    pub source: &'static str,
    /// The source's variable.
    pub alias: &'static str,
    /// Our variable (the `env` of a flag).
    pub canonical: &'static str,
    /// The subcommands that read it.
    pub commands: &'static [AliasCommand],
    /// How its value is converted.
    pub conversion: Conversion,
}

const BOTH: &[AliasCommand] = &[AliasCommand::Serve, AliasCommand::Worker];
const SERVE: &[AliasCommand] = &[AliasCommand::Serve];
const WORKER: &[AliasCommand] = &[AliasCommand::Worker];

/// Every alias. SkyPanelV2's and minicloud's durations are in seconds, as
/// ours; minicloud's control-plane endpoint is converted to a URL.
pub const ENV_ALIASES: &[EnvAlias] = &[
    EnvAlias {
        source: "SkyPanelV2",
        alias: "WORKER_HEARTBEAT_INTERVAL",
        canonical: "HEARTBEAT_INTERVAL_SEC",
        commands: BOTH,
        conversion: Conversion::Same,
    },
    EnvAlias {
        source: "SkyPanelV2",
        alias: "WORKER_HEARTBEAT_TIMEOUT",
        canonical: "WORKER_HEARTBEAT_TTL_SEC",
        commands: SERVE,
        conversion: Conversion::Same,
    },
    EnvAlias {
        source: "minicloud",
        alias: "WORKER_ID",
        canonical: "WORKER_CODE",
        commands: WORKER,
        conversion: Conversion::Same,
    },
    EnvAlias {
        source: "minicloud",
        alias: "CONTROL_PLANE_ENDPOINT",
        canonical: "CONTROL_PLANE_API_BASE",
        commands: WORKER,
        conversion: Conversion::GrpcEndpoint,
    },
    EnvAlias {
        source: "the exam platform's runbook",
        alias: "EXAM_VM_CPUS",
        canonical: "VM_CPU_CORES",
        commands: WORKER,
        conversion: Conversion::Same,
    },
    EnvAlias {
        source: "the exam platform's runbook",
        alias: "EXAM_VM_MEMORY_MB",
        canonical: "VM_MEMORY_MB",
        commands: WORKER,
        conversion: Conversion::Same,
    },
];

/// A canonical variable's value taken from its alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasValue {
    /// Our variable.
    pub canonical: &'static str,
    /// The value, converted.
    pub value: String,
}

fn set(env: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Two spellings of one value: the same text, or the same number.
fn same_value(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// The canonical values `command`'s aliases give, reading variables
/// through `env`: one per alias set whose canonical variable is not (a
/// canonical variable set to the same value needs nothing). An alias and
/// its canonical variable set to different values is an error naming both.
pub fn resolve_aliases(
    command: AliasCommand,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<AliasValue>, ConfigError> {
    let mut values = Vec::new();
    for row in ENV_ALIASES.iter().filter(|r| r.commands.contains(&command)) {
        let Some(raw) = set(&env, row.alias) else {
            continue;
        };
        let value = row.conversion.apply(&raw);
        match set(&env, row.canonical) {
            Some(canonical) if same_value(&canonical, &value) => {}
            Some(canonical) => {
                return Err(ConfigError(format!(
                    "{alias} ({source}'s name for {canonical_name}) is {raw:?} but \
                     {canonical_name} is {canonical:?}: set one of them, or both to the same value",
                    alias = row.alias,
                    source = row.source,
                    canonical_name = row.canonical,
                )));
            }
            None => values.push(AliasValue {
                canonical: row.canonical,
                value,
            }),
        }
    }
    Ok(values)
}

/// `cmd` with each value as the default of the flag whose variable is its
/// canonical one (a flag given on the command line still wins).
pub fn with_aliases(cmd: clap::Command, values: &[AliasValue]) -> clap::Command {
    values.iter().fold(cmd, |cmd, alias| {
        let id = cmd
            .get_arguments()
            .find(|arg| arg.get_env().is_some_and(|env| env == alias.canonical))
            .map(|arg| arg.get_id().clone());
        match id {
            Some(id) => cmd.mut_arg(id, |arg| {
                arg.default_value(alias.value.clone()).required(false)
            }),
            None => cmd,
        }
    })
}

#[cfg(test)]
mod tests;
