//! What it takes to reach the weather server: address, login, which host key to trust, and
//! the timeouts. Built by the CLI layer from flags and environment; secrets stay wrapped.

use super::SftpError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A password or passphrase. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to libssh2 and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a password comes from. A file is read at connect time, so a daemon picks up a
/// rotated password without a restart and `status` never needs to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Value(Secret),
    File(PathBuf),
}

impl SecretSource {
    /// The secret; a file's trailing newline (as `echo` writes it) is not part of it.
    pub fn read(&self) -> Result<Secret, SftpError> {
        match self {
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    SftpError::Config(format!("cannot read password file {}: {e}", path.display()))
                })?;
                Ok(Secret(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
        }
    }
}

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
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
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
