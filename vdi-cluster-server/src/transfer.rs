//! `vdi-cluster store export` and `vdi-cluster store import`: a whole
//! store as one JSON dump on standard output, and back into any store.
//!
//! ```sh
//! vdi-cluster store export --store redis://127.0.0.1:6379 > dump.json
//! vdi-cluster store import --store postgres://postgres@db/vdi < dump.json
//! ```
//!
//! The dump's shape is `vdi_cluster_protocol::dump`; what is copied and how
//! is `vdi_cluster_core::transfer`, written once for every pair of
//! backends. This module only opens the store and moves bytes.

use std::io::{Read, Write};
use std::time::Duration;

use clap::{Args, Subcommand};
use vdi_cluster_core::transfer::{ImportError, ImportMode, ImportReport, export, import};
use vdi_cluster_core::{Clock, SystemClock, ValidationError};
use vdi_cluster_protocol::dump::StoreDump;

use crate::store::{StoreError, StoreOptions, open_store};

/// Options of `vdi-cluster store`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: StoreAction,
}

/// `export` or `import`.
#[derive(Debug, Clone, Subcommand)]
pub enum StoreAction {
    /// Write everything of the store that must survive a move (workers,
    /// credentials' hashes, join tokens, the calendar, webhooks and
    /// undelivered alerts, the audit trail, live dispatches) to standard
    /// output as JSON. Stop the control planes first for a consistent copy.
    Export(StoreTarget),
    /// Read a dump from standard input and write it into the store:
    /// checked as a whole first, refused into a store that holds anything
    /// unless `--merge`.
    Import(ImportArgs),
}

/// Which store.
#[derive(Debug, Clone, Args)]
pub struct StoreTarget {
    /// The store: `memory`, `redis://…` or `postgres://…` (PostgreSQL's
    /// migrations are applied first).
    #[arg(long, env = "VDI_STORE", value_name = "URL")]
    pub store: String,

    /// Key prefix on Redis.
    #[arg(
        long,
        env = "VDI_REDIS_PREFIX",
        default_value = "vdi",
        value_name = "PREFIX"
    )]
    pub redis_prefix: String,
}

/// Options of `vdi-cluster store import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The store written into.
    #[command(flatten)]
    pub target: StoreTarget,

    /// Add to a store that already holds something: what it holds under
    /// an item's key is kept and the dump's item skipped (also completes
    /// an interrupted import).
    #[arg(long)]
    pub merge: bool,

    /// Lifetime of each exam's sticky worker, from its dispatches'
    /// activation (as `serve --sticky-exam-ttl-sec`).
    #[arg(
        long,
        env = "WORKER_STICKY_EXAM_TTL_SEC",
        default_value_t = 21_600,
        value_name = "SEC"
    )]
    pub sticky_exam_ttl_sec: u64,
}

/// Why an export or an import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] StoreError),
    /// The input is not a dump this build reads; nothing was written.
    #[error("the dump is not valid: {0}")]
    Dump(#[from] ValidationError),
    /// The import was refused or failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The store failed during the export.
    #[error("export failed: {0}")]
    Export(#[from] vdi_cluster_core::Error),
    /// Standard input or output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl StoreTarget {
    fn options(&self) -> StoreOptions {
        StoreOptions {
            redis_prefix: self.redis_prefix.clone(),
            ..StoreOptions::default()
        }
    }
}

/// Reads the whole store `target` names, as a dump.
pub async fn export_store(target: &StoreTarget) -> Result<StoreDump, TransferError> {
    let opened = open_store(&target.store, &target.options()).await?;
    let contents = export(opened.store.as_ref()).await?;
    Ok(StoreDump::new(contents, SystemClock.now()))
}

/// Parses the dump in `input` and writes it into the store `args` names.
pub async fn import_store(args: &ImportArgs, input: &[u8]) -> Result<ImportReport, TransferError> {
    let dump = StoreDump::parse(input)?;
    let opened = open_store(&args.target.store, &args.target.options()).await?;
    let mode = if args.merge {
        ImportMode::Merge
    } else {
        ImportMode::IntoEmpty
    };
    let ttl = Duration::from_secs(args.sticky_exam_ttl_sec);
    Ok(import(opened.store.as_ref(), &dump.into_contents(), mode, ttl).await?)
}

/// Runs `action`: an export writes the dump to `output`, an import reads
/// it from `input`. Answers a summary of what was done, for standard
/// error.
pub async fn run(
    action: &StoreAction,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<String, TransferError> {
    match action {
        StoreAction::Export(target) => {
            let dump = export_store(target).await?;
            serde_json::to_writer_pretty(&mut output, &dump)
                .map_err(std::io::Error::from)
                .and_then(|()| output.write_all(b"\n"))
                .and_then(|()| output.flush())
                .map_err(|source| TransferError::Io {
                    what: "cannot write the dump",
                    source,
                })?;
            Ok(format!(
                "exported {} workers, {} exams, {} live dispatches\n",
                dump.workers.len(),
                dump.exams.len(),
                dump.dispatches.len()
            ))
        }
        StoreAction::Import(args) => {
            let mut bytes = Vec::new();
            input
                .read_to_end(&mut bytes)
                .map_err(|source| TransferError::Io {
                    what: "cannot read the dump from standard input",
                    source,
                })?;
            let report = import_store(args, &bytes).await?;
            Ok(format!("imported:\n{report}"))
        }
    }
}
