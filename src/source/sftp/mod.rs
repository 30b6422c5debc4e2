//! The sFTP source of the weather flow: settings, the ssh2 connection, and host-key checks.
//!
//! A connection is only ever handed out after the server proved it holds a host key we trust
//! ([`hostkey`]) and the login succeeded; every way out of a connection (success, error,
//! panic) closes it ([`Connection`]'s `Drop`). Secrets live in [`Secret`], whose `Debug` and
//! `Display` print `***`, so no log line, error or status output can carry them.

#[cfg(feature = "sftp")]
mod conn;
#[cfg(feature = "sftp")]
pub mod hostkey;
mod settings;
#[cfg(feature = "sftp")]
mod source;

#[cfg(feature = "sftp")]
pub use conn::{is_file_level, is_missing, Connection};
pub use settings::{
    default_known_hosts, fingerprint, normalize_pin, Auth, HostKeyCheck, Secret, SecretSource,
    SftpSettings,
};
#[cfg(feature = "sftp")]
pub use source::SftpSource;

use crate::source::{Counted, Source, SourceMeta};
use std::io;
use std::path::PathBuf;

/// The weather server's folder as a [`Source`] (counted, as every source a run reads);
/// connects on first use. The one place the weather flow picks its client.
#[cfg(feature = "sftp")]
pub fn source(settings: SftpSettings) -> Result<Box<Counted<dyn Source + Send>>, SftpError> {
    Ok(Box::new(Counted::new(SftpSource::new(settings))))
}

/// A build without the `sftp` feature has no client, and says so (the CLI refuses
/// `SFTP_HOST` in such a build before it gets here).
#[cfg(not(feature = "sftp"))]
pub fn source(settings: SftpSettings) -> Result<Box<Counted<dyn Source + Send>>, SftpError> {
    Err(SftpError::Config(format!(
        "{}: this ingest was built without the `sftp` feature",
        settings.addr()
    )))
}

/// One entry of the remote directory, with what the listing said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The raw name, as the server sent it.
    pub name: Vec<u8>,
    pub meta: SourceMeta,
}

impl From<crate::source::Listed> for RemoteEntry {
    fn from(listed: crate::source::Listed) -> Self {
        let meta = listed.meta.unwrap_or(SourceMeta {
            kind: listed.kind,
            size: 0,
            mtime_ns: 0,
        });
        RemoteEntry {
            name: listed.name.into_encoded_bytes(),
            meta,
        }
    }
}

/// The client's own words inside a `Lost` error from [`SftpSource`] (or an `io::Error` made
/// from one), for whether to retry: the kind says it was the connection, these say why.
pub fn connection_error(e: &io::Error) -> Option<&SftpError> {
    let inner = e.get_ref()?;
    if let Some(seam) = inner.downcast_ref::<crate::seam::SeamError>() {
        return connection_error(seam.io());
    }
    inner.downcast_ref::<SftpError>()
}

/// Why the weather source could not be read as a whole. Per-file problems are not errors
/// here; they become `Failed` events.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("cannot connect to the sFTP server {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("sFTP server {addr}: SSH handshake failed: {detail}")]
    Handshake { addr: String, detail: String },
    #[error("sFTP server {addr} offered host key {fingerprint}, which is not in {known_hosts}; refusing to connect (check the fingerprint with the server's owner, then add it there, pin it with SFTP_HOST_KEY_SHA256, or run once with --accept-new-host-key)")]
    UnknownHostKey {
        addr: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error("sFTP server {addr} offered host key {fingerprint}, which does NOT match {expected}; refusing to connect (possible man-in-the-middle, or the server's key changed)")]
    HostKeyMismatch {
        addr: String,
        fingerprint: String,
        /// Where the trusted key came from (a known_hosts file, or the pinned fingerprint).
        expected: String,
    },
    #[error("sFTP server {addr}: cannot use known_hosts file {path}: {detail}")]
    KnownHosts {
        addr: String,
        path: PathBuf,
        detail: String,
    },
    #[error("sFTP server {addr}: login as `{user}` with {method} failed: {detail}")]
    Auth {
        addr: String,
        user: String,
        method: &'static str,
        detail: String,
    },
    #[error("sFTP server {addr}: {doing}: {detail}")]
    Session {
        addr: String,
        doing: String,
        detail: String,
    },
    #[error("sFTP settings: {0}")]
    Config(String),
}

/// How a flow meets the server's failure: in the client's words, with whether to retry.
impl From<SftpError> for crate::Error {
    fn from(e: SftpError) -> Self {
        crate::Error::Sftp(e.server_error())
    }
}

impl SftpError {
    /// What a flow needs to know: the words, and whether to retry.
    pub fn server_error(&self) -> crate::error::ServerError {
        crate::error::ServerError {
            transient: self.is_transient(),
            stall: self.is_stall(),
            message: self.to_string(),
        }
    }

    /// Whether trying again later may help. Host-key, login and configuration errors need a
    /// person: retrying them only hammers the server (and may lock the account).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SftpError::Connect { .. } | SftpError::Handshake { .. } | SftpError::Session { .. }
        )
    }

    /// Whether the server stopped answering (a call ran into `--sftp-timeout-secs`): a hung
    /// server or a link gone dark. Such a pass ends as an outage at once; trying again within
    /// the pass would only wait out the timeout again for each retry (four of them once held
    /// a stalled pass for about 250 s at the default 30 s).
    pub fn is_stall(&self) -> bool {
        let timed_out = |detail: &str| {
            let detail = detail.to_ascii_lowercase();
            detail.contains("timed out") || detail.contains("timeout expired")
        };
        match self {
            SftpError::Connect { source, .. } => source.kind() == std::io::ErrorKind::TimedOut,
            SftpError::Handshake { detail, .. } | SftpError::Session { detail, .. } => {
                timed_out(detail)
            }
            _ => false,
        }
    }
}
