//! Passwords and passphrases of the sources (the sFTP server, a native SMB share): wrapped so
//! they never print, and read from a file at connect time so a rotated one needs no restart.

use std::fmt;
use std::path::PathBuf;

/// A password or passphrase. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to the client library and nothing else.
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
    /// A file that cannot be read is an error naming the file (never its content).
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            SecretSource::Value(s) => Ok(s.clone()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?;
                Ok(Secret(text.trim_end_matches(['\r', '\n']).to_owned()))
            }
        }
    }
}
