//! Which credential the node's heartbeats carry, and the file that keeps
//! the one received by joining.
//!
//! The worker's own credential (from joining, or the credential file) wins,
//! else the shared `WORKER_HEARTBEAT_TOKEN` (only when no join token is
//! configured: a worker that can join wants its own), else none: the
//! protocol's [`CredentialKind`], as the status endpoint reports it.
//!
//! An own credential expires; the agent rotates it when two thirds of its
//! lifetime have passed ([`Credential::rotation_due`]). The credential file
//! holds the secret on its first line and, on the second, `rotate-at <ms>`:
//! when the rotation is due on this node's clock. A file without that line
//! (written before credentials expired) is rotated at once, which tells
//! the agent the credential's lifetime.

use std::fmt;
use std::path::Path;

use vdi_cluster_protocol::node_status::CredentialKind;

/// The credential heartbeats carry now.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    secret: Option<String>,
    kind: CredentialKind,
    rotate_at: Option<u64>,
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
            (Some(own), _) => own,
            (None, Some(shared)) if !can_join => Self {
                secret: Some(shared.to_owned()),
                kind: CredentialKind::Shared,
                rotate_at: None,
            },
            _ => Self::none(),
        }
    }

    /// No credential.
    pub fn none() -> Self {
        Self {
            secret: None,
            kind: CredentialKind::None,
            rotate_at: None,
        }
    }

    /// The worker's own credential, to be rotated at `rotate_at` (ms since
    /// the epoch on this node's clock; `None`: at once, its lifetime being
    /// unknown).
    pub fn own(secret: String, rotate_at: Option<u64>) -> Self {
        Self {
            secret: Some(secret),
            kind: CredentialKind::Own,
            rotate_at,
        }
    }

    /// The worker's own credential received at `now_ms` with a lifetime of
    /// `ttl_sec` (`None`: it never expires): rotated at two thirds of it.
    pub fn received(secret: String, now_ms: u64, ttl_sec: Option<u64>) -> Self {
        let rotate_at = match ttl_sec {
            Some(ttl) => now_ms.saturating_add(ttl.saturating_mul(2000) / 3),
            None => u64::MAX,
        };
        Self::own(secret, Some(rotate_at))
    }

    /// Whether an own credential is due for rotation at `now_ms`.
    pub fn rotation_due(&self, now_ms: u64) -> bool {
        self.kind == CredentialKind::Own && self.rotate_at.is_none_or(|at| at <= now_ms)
    }

    /// When the rotation is due (ms since the epoch), if known.
    pub fn rotate_at(&self) -> Option<u64> {
        self.rotate_at
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

/// The worker's own credential kept in `path`, if any.
pub fn read(path: &Path) -> Option<Credential> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the credential file");
            None
        }
    }
}

fn parse(text: &str) -> Option<Credential> {
    let mut lines = text.lines().map(str::trim);
    let secret = lines.next().filter(|s| !s.is_empty())?.to_owned();
    let rotate_at = lines
        .find_map(|l| l.strip_prefix("rotate-at "))
        .and_then(|at| at.trim().parse().ok());
    Some(Credential::own(secret, rotate_at))
}

/// Keeps `credential` (an own credential) in `path`, readable by its owner
/// only, replacing the file in one rename.
pub fn write(path: &Path, credential: &Credential) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut text = credential.secret().unwrap_or_default().to_owned();
    text.push('\n');
    if let Some(at) = credential.rotate_at {
        text.push_str(&format!("rotate-at {at}\n"));
    }
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    let temporary = std::path::PathBuf::from(name);
    let mut file = options.open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_due_at_two_thirds_of_the_lifetime() {
        let c = Credential::received("vdiw.w.s".into(), 1_000, Some(30));
        assert_eq!(c.rotate_at(), Some(21_000));
        assert!(!c.rotation_due(20_999));
        assert!(c.rotation_due(21_000));
        assert!(!Credential::received("s".into(), 0, None).rotation_due(u64::MAX - 1));
        // Unknown lifetime (an old file): at once. Never for shared tokens.
        assert!(Credential::own("s".into(), None).rotation_due(0));
        assert!(!Credential::none().rotation_due(u64::MAX));
    }

    #[test]
    fn the_file_keeps_the_secret_and_the_rotation() {
        let dir = std::env::temp_dir().join(format!("vdi-cred-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("credential");
        assert!(read(&path).is_none());
        let c = Credential::received("vdiw.w.s".into(), 1_000, Some(30));
        write(&path, &c).unwrap();
        assert_eq!(read(&path), Some(c));
        // A file from before expiry: the secret alone.
        std::fs::write(&path, "vdiw.w.old\n").unwrap();
        assert_eq!(
            read(&path),
            Some(Credential::own("vdiw.w.old".into(), None))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
