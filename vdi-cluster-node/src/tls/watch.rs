//! Reading TLS files again: on SIGHUP, and when a file's modification
//! time moves (checked every [`WATCH_EVERY`]), for the certificate and
//! the CA bundle alike.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::TlsError;

/// How often the files' modification times are compared.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

/// A piece of TLS read from files, that can be read again.
pub(super) trait Reloadable: Send + Sync + 'static {
    /// Reads the files again; on an error the previous reading stays.
    fn reload(&self) -> Result<(), TlsError>;
    /// Whether a file's modification time moved since the last reading.
    fn changed(&self) -> bool;
    /// What it is, for the log: `TLS certificate`, `TLS CA bundle`.
    fn what(&self) -> &'static str;
    /// Its (first) file, for the log.
    fn path(&self) -> &Path;
}

fn reload_logged(item: &dyn Reloadable, why: &str) {
    let file = item.path().display().to_string();
    match item.reload() {
        Ok(()) => tracing::info!(%file, why, "{} reloaded", item.what()),
        Err(e) => tracing::warn!(
            error = %e, why,
            "{} not reloaded: the previous one stays", item.what()
        ),
    }
}

/// Reloads `items` on SIGHUP and when their files change, until
/// `shutdown`.
pub(super) fn watch(items: Vec<Arc<dyn Reloadable>>, shutdown: CancellationToken) {
    if items.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut hangup = hangup_signal();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = next_hangup(&mut hangup) => {
                    for item in &items {
                        reload_logged(item.as_ref(), "SIGHUP");
                    }
                }
                _ = tick.tick() => {
                    for item in items.iter().filter(|item| item.changed()) {
                        reload_logged(item.as_ref(), "file changed");
                    }
                }
            }
        }
    });
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP: TLS files reload on change only"))
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(signal) => {
            if signal.recv().await.is_none() {
                *hangup = None;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}
