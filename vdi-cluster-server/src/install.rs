//! SkyPanelV2's installation script: a POSIX shell script an admin generates
//! (`POST /api/vdi/workers/install-script`) and runs on a fresh host, which
//! fetches the agent from this control plane (its own executable,
//! `GET /api/vdi/agent/vdi-cluster`), checks its SHA-256, writes the
//! worker's settings with a fresh single-use join token, installs a systemd
//! unit and waits for the first accepted heartbeat.
//!
//! The script is `assets/install-worker.sh` (checked by shellcheck in CI)
//! with its `@NAME@` placeholders filled in here; every value is checked to
//! fit between single quotes.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// The script, with placeholders.
pub const TEMPLATE: &str = include_str!("../assets/install-worker.sh");

/// What a control plane started by `serve` knows that an installation
/// needs: the cluster token workers must accept, the URL workers reach it
/// at (when configured), and its own executable, served as the agent.
#[derive(Clone)]
pub struct InstallConfig {
    cluster_token: String,
    public_url: Option<String>,
    agent: PathBuf,
    /// The agent's digest, with the size and modification time it was
    /// computed for.
    digest: Arc<Mutex<Option<(AgentStamp, String)>>>,
}

/// What tells that the agent file changed since its digest was computed.
type AgentStamp = (u64, Option<std::time::SystemTime>);

impl fmt::Debug for InstallConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallConfig")
            .field("public_url", &self.public_url)
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl InstallConfig {
    /// Installations of workers that accept `cluster_token`, reaching this
    /// control plane at `public_url` (none: no script is served, since no
    /// request header may say where the control plane is), with `agent` as
    /// the agent binary.
    pub fn new(cluster_token: String, public_url: Option<String>, agent: PathBuf) -> Self {
        Self {
            cluster_token,
            public_url,
            agent,
            digest: Arc::default(),
        }
    }

    /// The cluster token.
    pub fn cluster_token(&self) -> &str {
        &self.cluster_token
    }

    /// The configured public URL, without a trailing `/`.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }

    /// The agent binary served for download.
    pub fn agent(&self) -> &Path {
        &self.agent
    }

    /// The agent's SHA-256 (blocking): computed once, and again only when
    /// the file's size or modification time changes (hashing a large
    /// binary on every installation request would be slow).
    pub fn agent_sha256(&self) -> std::io::Result<String> {
        let meta = std::fs::metadata(&self.agent)?;
        let stamp = (meta.len(), meta.modified().ok());
        // Held while hashing: concurrent first requests wait for one hash.
        let mut cached = self.digest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, digest)) = cached.as_ref()
            && *seen == stamp
        {
            return Ok(digest.clone());
        }
        let digest = sha256_file(&self.agent)?;
        *cached = Some((stamp, digest.clone()));
        Ok(digest)
    }
}

/// This build's platform as `uname -s` and `uname -m` print it
/// (`Linux x86_64`): the script refuses to install on another.
pub fn platform() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    };
    format!("{os} {}", std::env::consts::ARCH)
}

/// The SHA-256 of the file at `path`, lower-case hex (blocking).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The values of one script.
#[derive(Debug, Clone)]
pub struct ScriptValues<'a> {
    /// The control plane's URL, without `/api`.
    pub control_plane: &'a str,
    /// A fresh join token (single use).
    pub join_token: &'a str,
    /// The cluster token.
    pub cluster_token: &'a str,
    /// The agent's SHA-256.
    pub agent_sha256: &'a str,
    /// The worker's code, or empty for the host name.
    pub code: &'a str,
    /// When the script was generated (RFC 3339).
    pub generated_at: &'a str,
    /// When the join token expires (RFC 3339).
    pub expires_at: &'a str,
}

/// A value that cannot be written between single quotes in a shell script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} cannot go into a shell script (a quote, a newline or a control character)")]
pub struct Unquotable(pub &'static str);

/// The script with `values` in place.
pub fn render(values: &ScriptValues<'_>) -> Result<String, Unquotable> {
    let platform = platform();
    let pairs = [
        ("CONTROL_PLANE", values.control_plane),
        ("JOIN_TOKEN", values.join_token),
        ("CLUSTER_TOKEN", values.cluster_token),
        ("AGENT_SHA256", values.agent_sha256),
        ("AGENT_PLATFORM", platform.as_str()),
        ("CODE", values.code),
        ("GENERATED_AT", values.generated_at),
        ("EXPIRES_AT", values.expires_at),
    ];
    let mut script = TEMPLATE.to_owned();
    for (name, value) in pairs {
        if value.contains(['\'', '@']) || value.chars().any(char::is_control) {
            return Err(Unquotable(name));
        }
        script = script.replace(&format!("@{name}@"), value);
    }
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> ScriptValues<'static> {
        ScriptValues {
            control_plane: "http://127.0.0.1:8080",
            join_token: "vdij_0123",
            cluster_token: "cluster-token",
            agent_sha256: "ab12",
            code: "",
            generated_at: "2026-11-30T09:00:00Z",
            expires_at: "2026-11-30T10:00:00Z",
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        let script = render(&values()).unwrap();
        assert!(!script.contains("='@"), "{script}");
        assert!(script.contains("JOIN_TOKEN='vdij_0123'"));
        assert!(script.contains(&format!("AGENT_PLATFORM='{}'", platform())));
        assert!(script.starts_with("#!/bin/sh\n"));
    }

    #[test]
    fn values_that_would_break_the_quoting_are_refused() {
        let mut v = values();
        v.control_plane = "http://x'; rm -rf /; '";
        assert_eq!(render(&v).unwrap_err(), Unquotable("CONTROL_PLANE"));
        let mut v = values();
        v.code = "a\nb";
        assert_eq!(render(&v).unwrap_err(), Unquotable("CODE"));
    }

    #[test]
    fn a_file_hashes_to_its_sha256() {
        let dir = std::env::temp_dir().join(format!("vdi-sha-{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&dir, b"abc").unwrap();
        assert_eq!(
            sha256_file(&dir).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::remove_file(&dir).unwrap();
    }
}
