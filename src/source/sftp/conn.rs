//! One authenticated sFTP connection (ssh2/libssh2, blocking, with a timeout on every call).
//!
//! [`Connection::open`] runs connect → handshake → host-key check → login → sftp, in that
//! order, and returns only when all succeeded. The value owns the socket: dropping it (on any
//! path, errors and panics included) says goodbye to the server and closes the socket.

use super::{hostkey, Auth, RemoteEntry, SftpError, SftpSettings};
use crate::source::{EntryKind, SourceMeta};
use ssh2::{ErrorCode, FileStat, FileType, Session, Sftp};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;

/// An open, authenticated connection to the weather server.
pub struct Connection {
    session: Session,
    sftp: Option<Sftp>,
    addr: String,
    dir: String,
}

impl Connection {
    pub fn open(s: &SftpSettings) -> Result<Connection, SftpError> {
        let addr = s.addr();
        let tcp = connect_tcp(s, &addr)?;
        let handshake = |e: ssh2::Error| SftpError::Handshake {
            addr: addr.clone(),
            detail: e.message().to_owned(),
        };
        let mut session = Session::new().map_err(handshake)?;
        session.set_timeout(u32::try_from(s.timeout.as_millis()).unwrap_or(u32::MAX));
        session.set_tcp_stream(tcp);
        session.handshake().map_err(handshake)?;
        // From here on `Drop` closes the connection, whatever fails next.
        let mut conn = Connection {
            session,
            sftp: None,
            addr: addr.clone(),
            dir: s.path.trim_end_matches('/').to_owned(),
        };
        hostkey::verify(&conn.session, &s.host_key, &s.host, s.port, &addr)?;
        login(&conn.session, s, &addr)?;
        let sftp = conn
            .session
            .sftp()
            .map_err(|e| conn.lost("starting the sftp subsystem", &e))?;
        conn.sftp = Some(sftp);
        Ok(conn)
    }

    fn sftp(&self) -> &Sftp {
        self.sftp.as_ref().expect("set by open")
    }

    /// A connection-level error in the words of this connection.
    pub fn lost(&self, doing: &str, e: &dyn std::fmt::Display) -> SftpError {
        SftpError::Session {
            addr: self.addr.clone(),
            doing: doing.to_owned(),
            detail: e.to_string(),
        }
    }

    /// The remote path of a name in the weather directory. Only names that parsed as
    /// weather names are ever joined, so `name` holds no `/`.
    fn path_of(&self, name: &str) -> String {
        if self.dir.is_empty() {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.dir)
        }
    }

    /// One listing of the weather directory (`lstat` facts per entry, as the server sends).
    pub fn list(&self) -> Result<Vec<RemoteEntry>, SftpError> {
        let dir = if self.dir.is_empty() { "/" } else { &self.dir };
        let entries = self
            .sftp()
            .readdir(Path::new(dir))
            .map_err(|e| self.lost(&format!("listing {dir}"), &e))?;
        Ok(entries
            .into_iter()
            .filter_map(|(path, stat)| {
                let name = path.file_name()?.as_encoded_bytes().to_vec();
                Some(RemoteEntry {
                    name,
                    meta: meta_of(&stat),
                })
            })
            .collect())
    }

    /// Opens a file for reading; the facts come from the open handle (`fstat`).
    pub fn open_file(&self, name: &str) -> Result<(ssh2::File, SourceMeta), ssh2::Error> {
        let mut file = self.sftp().open(Path::new(&self.path_of(name)))?;
        let meta = meta_of(&file.stat()?);
        Ok((file, meta))
    }

    /// One `lstat`; `Ok(None)` if the name is gone.
    pub fn lstat(&self, name: &str) -> io::Result<Option<SourceMeta>> {
        match self.sftp().lstat(Path::new(&self.path_of(name))) {
            Ok(stat) => Ok(Some(meta_of(&stat))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Close the sftp channel first, then the session; errors do not matter any more
        // (the server may be gone), the socket is closed when `session` drops.
        drop(self.sftp.take());
        let _ = self.session.disconnect(None, "ingest: done", None);
    }
}

/// Whether an sFTP error is about one file (absent, forbidden) rather than the connection.
pub fn is_file_level(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::SFTP(_))
}

pub fn is_missing(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::SFTP(ssh2_raw::LIBSSH2_FX_NO_SUCH_FILE | ssh2_raw::LIBSSH2_FX_NO_SUCH_PATH)
    )
}

/// libssh2 status codes we match on (the `ssh2` crate does not re-export them).
mod ssh2_raw {
    pub const LIBSSH2_FX_NO_SUCH_FILE: i32 = 2;
    pub const LIBSSH2_FX_NO_SUCH_PATH: i32 = 10;
}

fn connect_tcp(s: &SftpSettings, addr: &str) -> Result<TcpStream, SftpError> {
    let fail = |source: io::Error| SftpError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name resolves to nothing");
    for sock in (s.host.as_str(), s.port).to_socket_addrs().map_err(fail)? {
        match TcpStream::connect_timeout(&sock, s.timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(fail(last))
}

fn login(session: &Session, s: &SftpSettings, addr: &str) -> Result<(), SftpError> {
    let (method, result) = match &s.auth {
        Auth::Password(source) => {
            let password = source.read().map_err(SftpError::Config)?;
            (
                "a password",
                session.userauth_password(&s.user, password.expose()),
            )
        }
        Auth::Key { file, passphrase } => (
            "the key file",
            session.userauth_pubkey_file(
                &s.user,
                None,
                file,
                passphrase.as_ref().map(|p| p.expose()),
            ),
        ),
    };
    let refused = |detail: String| SftpError::Auth {
        addr: addr.to_owned(),
        user: s.user.clone(),
        method,
        detail,
    };
    result.map_err(|e| refused(e.message().to_owned()))?;
    if session.authenticated() {
        Ok(())
    } else {
        Err(refused("the server did not accept the login".into()))
    }
}

fn meta_of(stat: &FileStat) -> SourceMeta {
    let kind = match stat.file_type() {
        FileType::RegularFile => EntryKind::File,
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    // sFTP v3 carries whole seconds.
    let mtime_ns = stat
        .mtime
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| s.checked_mul(1_000_000_000))
        .unwrap_or(0);
    SourceMeta {
        kind,
        size: stat.size.unwrap_or(0),
        mtime_ns,
    }
}
