//! What it takes to reach the weather server: address, login, which host key to trust, and
//! the timeouts. Built by the CLI layer from flags and environment; secrets stay wrapped.

use super::SftpError;
pub use crate::source::secret::{Secret, SecretSource};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
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

/// OpenSSH's fingerprint format: `SHA256:` and the unpadded base64 of the SHA-256 digest.
pub fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(sha256))
}

/// A user-given fingerprint in canonical form; `SHA256:` prefix and `=` padding optional. A
/// refusal does not name the setting: only the caller knows where the pin was set.
pub fn normalize_pin(pin: &str) -> Result<String, SftpError> {
    let body = pin.trim();
    let body = body.strip_prefix("SHA256:").unwrap_or(body);
    let body = body.trim_end_matches('=');
    match STANDARD_NO_PAD.decode(body) {
        Ok(digest) if digest.len() == 32 => Ok(fingerprint(&digest)),
        _ => Err(SftpError::Config(format!(
            "`{pin}` is not a SHA256 fingerprint (expected SHA256:<43 base64 characters>, as `ssh-keygen -lf` prints)"
        ))),
    }
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

    #[test]
    fn pins_are_normalized_and_garbage_is_refused() {
        let digest = [7u8; 32];
        let canonical = fingerprint(&digest);
        assert!(canonical.starts_with("SHA256:") && !canonical.ends_with('='));
        let bare = canonical.trim_start_matches("SHA256:");
        assert_eq!(normalize_pin(bare).unwrap(), canonical);
        assert_eq!(normalize_pin(&format!("{canonical}=")).unwrap(), canonical);
        for bad in ["SHA256:tooshort", "MD5:aa:bb"] {
            match normalize_pin(bad) {
                Err(SftpError::Config(msg)) => {
                    let named = format!("`{bad}` is not a SHA256 fingerprint");
                    assert!(msg.contains(&named), "{msg}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
