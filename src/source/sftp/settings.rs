//! What it takes to reach the weather server: address, login, which host key to trust, and
//! the timeouts. Built by the CLI layer from flags and environment; secrets stay wrapped.

pub use crate::source::secret::{Secret, SecretSource};
use std::path::PathBuf;
use std::time::Duration;

/// How we log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Password(SecretSource),
    /// A private key file (OpenSSH or PEM format), with its passphrase if it has one.
    Key {
        file: PathBuf,
        passphrase: Option<Secret>,
    },
}

/// Which host key we trust. There is no "trust anything" variant on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// An OpenSSH `known_hosts` file. With `accept_new`, a host that has no entry at all is
    /// trusted on first use and recorded in the file; a *different* key is still refused.
    KnownHosts { file: PathBuf, accept_new: bool },
    /// Exactly this key, as its OpenSSH fingerprint `SHA256:<base64>`.
    Pinned(String),
}

/// Everything needed to open a connection to the weather server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: Auth,
    /// The remote directory holding the `Pred_YYYY-MM-DD.csv` files.
    pub path: String,
    pub host_key: HostKeyCheck,
    /// Limit for the TCP connect and for every SSH/sFTP operation after it.
    pub timeout: Duration,
}

impl SftpSettings {
    /// `host:port`, for messages (never with the user's secrets).
    pub fn addr(&self) -> String {
        crate::source::host_port(&self.host, self.port)
    }
}

/// The user's `~/.ssh/known_hosts`, as OpenSSH reads it.
pub fn default_known_hosts() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".ssh").join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_in_debug_or_display() {
        let settings = SftpSettings {
            host: "h".into(),
            port: 22,
            user: "u".into(),
            auth: Auth::Password(SecretSource::Value(Secret::new("hunter2"))),
            path: "/Meteo2".into(),
            host_key: HostKeyCheck::Pinned("SHA256:x".into()),
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{settings:?} {}", Secret::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn password_file_loses_its_trailing_newline_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "pa ss\n").unwrap();
        let secret = SecretSource::File(path).read().unwrap();
        assert_eq!(secret.expose(), "pa ss");
    }
}
