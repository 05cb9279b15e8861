//! Which credential the node's heartbeats carry, and the file that keeps
//! the one received by joining.
//!
//! The worker's own credential (from joining, or the credential file) wins,
//! else the shared `WORKER_HEARTBEAT_TOKEN` (only when no join token is
//! configured: a worker that can join wants its own), else none: the
//! protocol's [`CredentialKind`], as the status endpoint reports it.

use std::fmt;
use std::path::Path;

use vdi_cluster_protocol::node_status::CredentialKind;

/// The credential heartbeats carry now.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    secret: Option<String>,
    kind: CredentialKind,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The starting credential: the one kept in `file`, else the shared
    /// `worker_token` when the worker cannot join, else none.
    pub fn initial(file: Option<&Path>, worker_token: Option<&str>, can_join: bool) -> Self {
        match (file.and_then(read), worker_token) {
            (Some(own), _) => Self::own(own),
            (None, Some(shared)) if !can_join => Self {
                secret: Some(shared.to_owned()),
                kind: CredentialKind::Shared,
            },
            _ => Self::none(),
        }
    }

    /// No credential.
    pub fn none() -> Self {
        Self {
            secret: None,
            kind: CredentialKind::None,
        }
    }

    /// The worker's own credential.
    pub fn own(secret: String) -> Self {
        Self {
            secret: Some(secret),
            kind: CredentialKind::Own,
        }
    }

    /// What kind it is.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// The secret to send, if any.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }
}

/// The credential kept in `path`, if any.
pub fn read(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the credential file");
            None
        }
    }
}

/// Keeps `credential` in `path`, readable by its owner only.
pub fn write(path: &Path, credential: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(credential.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
