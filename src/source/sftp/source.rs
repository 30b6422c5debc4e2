//! The weather server's folder as a [`Source`], so the weather flow runs through the same copy
//! pipeline as the share: one connection, opened on first use and again after it dropped,
//! shared by every call of a pass.
//!
//! Errors say what they mean (`seam::Kind`): a missing name is `NotFound`, a per-file refusal
//! (permissions) is `Other`, and anything about the connection is `Lost`, which makes the copy
//! step end the pass as an outage instead of failing every further file. A `Lost` error
//! carries the client's [`SftpError`](super::SftpError) (see [`super::connection_error`]), so
//! the weather flow can tell a stall from a refused login.

use super::{is_file_level, is_missing, Connection, SftpError, SftpSettings};
use crate::seam::{Kind, Result, SeamError};
use crate::source::{Listed, Opened, Source, SourceMeta};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The sFTP folder of the weather forecasts.
pub struct SftpSource {
    settings: SftpSettings,
    conn: Mutex<Option<Arc<Connection>>>,
    /// Set when a read on an open file failed: the connection is not used again.
    broken: Arc<AtomicBool>,
}

impl SftpSource {
    pub fn new(settings: SftpSettings) -> Self {
        SftpSource {
            settings,
            conn: Mutex::new(None),
            broken: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The open connection, or a new one (after none, or one that failed).
    fn connection(&self) -> Result<Arc<Connection>> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if self.broken.swap(false, Ordering::Relaxed) {
            *conn = None;
        }
        if let Some(c) = &*conn {
            return Ok(Arc::clone(c));
        }
        let opened = Arc::new(Connection::open(&self.settings).map_err(lost)?);
        *conn = Some(Arc::clone(&opened));
        Ok(opened)
    }

    /// A connection-level failure: the connection is dropped (the next call reconnects).
    fn lost(&self, conn: &Connection, doing: &str, e: &dyn std::fmt::Display) -> SeamError {
        self.broken.store(true, Ordering::Relaxed);
        lost(conn.lost(doing, e))
    }

    fn describe_addr(&self) -> String {
        self.settings.addr()
    }
}

impl Source for SftpSource {
    fn stat(&self, name: &OsStr) -> Result<Option<SourceMeta>> {
        let name = utf8(name)?;
        let conn = self.connection()?;
        conn.lstat(name)
            .map_err(|e| self.lost(&conn, &format!("looking up {name}"), &e))
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let conn = self.connection()?;
        let entries = conn.list().inspect_err(|_| {
            self.broken.store(true, Ordering::Relaxed);
        });
        Ok(entries
            .map_err(lost)?
            .into_iter()
            .map(|entry| Listed {
                name: os_name(entry.name),
                kind: entry.meta.kind,
                meta: Some(entry.meta),
            })
            .collect())
    }

    fn open(&self, name: &OsStr) -> Result<Opened> {
        let name = utf8(name)?;
        let conn = self.connection()?;
        match conn.open_file(name) {
            Ok((file, meta)) => {
                let reader = Remote {
                    file,
                    broken: Arc::clone(&self.broken),
                    conn,
                    doing: format!("reading {name}"),
                };
                Ok(Opened::new(Box::new(reader), meta))
            }
            Err(e) if is_missing(&e) => Err(SeamError::new(Kind::NotFound, io::Error::other(e))),
            Err(e) if is_file_level(&e) => Err(SeamError::new(Kind::Other, io::Error::other(e))),
            Err(e) => Err(self.lost(&conn, &format!("opening {name}"), &e)),
        }
    }

    fn describe(&self) -> String {
        format!("the sFTP server {}", self.describe_addr())
    }

    /// Connects (and logs in), if not connected: the server as a whole is there.
    fn check(&self) -> Result<()> {
        self.connection().map(|_| ())
    }
}

/// An open remote file; a failed read marks the connection broken and says so.
struct Remote {
    file: ssh2::File,
    broken: Arc<AtomicBool>,
    conn: Arc<Connection>,
    doing: String,
}

impl Read for Remote {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf).map_err(|e| {
            self.broken.store(true, Ordering::Relaxed);
            // The kind rides inside the `io::Error` (`SeamError::from` gets it back).
            lost(self.conn.lost(&self.doing, &e)).into()
        })
    }
}

/// Weather names that matter are UTF-8 (they parsed as forecast names); any other name is not
/// on a server that speaks UTF-8 names.
fn utf8(name: &OsStr) -> Result<&str> {
    name.to_str()
        .ok_or_else(|| SeamError::msg(Kind::NotFound, "not a UTF-8 name"))
}

/// The connection failed: the server as a whole, in the client's words.
fn lost(e: SftpError) -> SeamError {
    SeamError::new(Kind::Lost, io::Error::other(e))
}

/// The raw name the server sent, as a name (exact on Unix; Windows keeps UTF-8 names whole and
/// replaces bytes that are not, which only ever name files the grammar skips).
fn os_name(bytes: Vec<u8>) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes)
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}
