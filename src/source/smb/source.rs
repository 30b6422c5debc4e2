//! The share's folder over SMB as a [`Source`]: one session, opened on first use and again
//! after it was lost, shared by every call of a pass and, in the daemon, by every pass.
//!
//! Errors say what they mean (`seam::Kind`), as for sFTP: a missing name is `NotFound` (or
//! `Ok(None)` for a lookup), one file's refusal (permissions, a writer's lock) is `Other`,
//! and a failure of the share as a whole is `Lost`, so the copy step ends the pass as an
//! outage instead of failing every further file (and nothing is concluded "gone").

use super::compound::{self, Whole};
use super::session::{failure, BoxFuture, Connected, Failure, Session};
use super::SmbSettings;
use crate::seam::{Kind, Result, SeamError};
use crate::source::{EntryKind, Listed, Opened, Source, SourceMeta};
use std::ffi::{OsStr, OsString};
use std::io::{self, Cursor, Read};
use std::sync::Arc;
use std::time::SystemTime;

/// The share's folder, read natively.
pub struct SmbSource {
    settings: SmbSettings,
    session: Arc<Session>,
}

/// Lookups worth having in flight together: 16 (a backlog's lookups as a prediction pass makes
/// them, `discover::predict`; the copy threads' reads come on top). Over a 10 ms link 1,246
/// lookups cost 12.5 s one at a time, 1.6 s eight at a time.
const LOOKUPS_IN_FLIGHT: usize = 16;

/// The share as a whole failed (unreachable, dropped, refused the login): an outage.
fn share_lost(why: String) -> SeamError {
    SeamError::msg(Kind::Lost, why)
}

impl SmbSource {
    pub fn new(settings: SmbSettings) -> io::Result<SmbSource> {
        Ok(SmbSource {
            settings,
            session: Arc::new(Session::new()?),
        })
    }

    fn call<T, F>(&self, op: F) -> Result<T, Failure>
    where
        F: for<'a> FnOnce(&'a mut Connected) -> BoxFuture<'a, smb2::Result<T>>,
    {
        self.session.call(&self.settings, op)
    }

    /// `e` as an error about `doing`.
    fn error(&self, doing: &str, e: Failure) -> SeamError {
        match e {
            Failure::NotFound => SeamError::msg(Kind::NotFound, format!("{doing}: not found")),
            Failure::File(why) => SeamError::msg(Kind::Other, format!("{doing}: {why}")),
            Failure::TooLarge => SeamError::msg(Kind::Other, format!("{doing}: too large to read")),
            Failure::Referred => SeamError::msg(Kind::Other, format!("{doing}: behind a DFS link")),
            Failure::Share(why) => share_lost(format!("{doing}: {why}")),
        }
    }

    /// A name the share can hold (SMB names are Unicode), as a share-relative path.
    fn path_of(&self, name: &OsStr) -> Option<String> {
        let dir = &self.settings.dir;
        let in_dir = |n: &str| {
            if dir.is_empty() {
                n.to_owned()
            } else {
                format!("{dir}/{n}")
            }
        };
        name.to_str().map(in_dir)
    }

    /// Looks `path` up: one round trip, on the shared connection.
    fn lookup(&self, path: String) -> Result<smb2::FileInfo, Failure> {
        let again = path.clone();
        self.session.call_shared(
            &self.settings,
            move |mut conn, tree| Box::pin(async move { tree.stat(&mut conn, &path).await }),
            move |c| Box::pin(async move { c.client.stat(&mut c.tree, &again).await }),
        )
    }

    /// A file too large for one compound read, streamed chunk by chunk.
    fn download(&self, path: String) -> Result<Opened, Failure> {
        let info_path = path.clone();
        let info = self
            .call(move |c| Box::pin(async move { c.client.stat(&mut c.tree, &info_path).await }))?;
        let download = self.call(move |c| {
            Box::pin(async move { c.client.open_file_download(&c.tree, &path).await })
        })?;
        let reader = Download {
            download,
            session: Arc::clone(&self.session),
            chunk: Cursor::new(Vec::new()),
            timeout: self.settings.timeout,
        };
        Ok(Opened::new(Box::new(reader), info_meta(&info)))
    }
}

impl Source for SmbSource {
    fn stat(&self, name: &OsStr) -> Result<Option<SourceMeta>> {
        let Some(path) = self.path_of(name) else {
            return Ok(None);
        };
        let doing = format!("looking up {path}");
        match self.lookup(path) {
            Ok(i) => Ok(Some(info_meta(&i))),
            Err(Failure::NotFound) => Ok(None),
            Err(e) => Err(self.error(&doing, e)),
        }
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let (dir, again) = (self.settings.dir.clone(), self.settings.dir.clone());
        let entries = self
            .session
            .call_shared(
                &self.settings,
                move |mut conn, tree| {
                    Box::pin(async move {
                        let asked = Some(listing_buffer(&conn));
                        let listed = tree.list_directory_instrumented(&mut conn, &dir, asked);
                        match listed.await {
                            Ok((entries, _timings)) => Ok(entries),
                            // A server refusing a query this large is listed 64 KiB at a time.
                            Err(smb2::Error::Protocol {
                                status: smb2::types::status::NtStatus::INVALID_PARAMETER,
                                ..
                            }) => tree.list_directory(&mut conn, &dir).await,
                            Err(e) => Err(e),
                        }
                    })
                },
                move |c| {
                    Box::pin(async move { c.client.list_directory(&mut c.tree, &again).await })
                },
            )
            .map_err(|e| self.folder_error("listing", e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.name != "." && e.name != "..")
            .map(|e| {
                let meta = meta_of(e.is_directory, &e.attributes, e.size, e.modified);
                Listed {
                    name: OsString::from(e.name),
                    kind: meta.kind,
                    meta: Some(meta),
                }
            })
            .collect())
    }

    /// One round trip for a file up to the server's read size (open, read, close as one
    /// compound request), with the size and mtime at the open and, from the close, after the
    /// read.
    fn open(&self, name: &OsStr) -> Result<Opened> {
        let path = self
            .path_of(name)
            .ok_or_else(|| SeamError::msg(Kind::NotFound, "not a Unicode name"))?;
        let doing = format!("reading {path}");
        let (whole, again) = (path.clone(), path.clone());
        let read = self.session.call_shared(
            &self.settings,
            move |mut conn, tree| {
                Box::pin(async move { read_whole(&mut conn, &tree, &whole).await })
            },
            move |c| {
                Box::pin(async move {
                    let read = c.client.read_file_compound_with_info(&mut c.tree, &again);
                    let (bytes, info) = read.await?;
                    let opened = info_meta(&info);
                    let closed = None;
                    Ok(Whole {
                        bytes,
                        opened,
                        closed,
                    })
                })
            },
        );
        match read {
            Ok(whole) => Ok(Opened {
                reader: Box::new(Cursor::new(whole.bytes)),
                meta: whole.opened,
                after_read: whole.closed,
            }),
            Err(Failure::TooLarge) => self.download(path).map_err(|e| self.error(&doing, e)),
            Err(e) => Err(self.error(&doing, e)),
        }
    }

    fn describe(&self) -> String {
        format!("the share {}", self.settings.url())
    }

    /// Each lookup is a round trip, and lookups made together are in flight together on the
    /// shared connection.
    fn lookups_in_flight(&self) -> usize {
        LOOKUPS_IN_FLIGHT
    }

    /// Connects (and logs in) if not connected, and finds the folder: the share is there.
    fn check(&self) -> Result<()> {
        if self.settings.dir.is_empty() {
            return self
                .session
                .call_shared(
                    &self.settings,
                    |mut conn, tree| Box::pin(async move { tree.fs_info(&mut conn).await }),
                    |c| Box::pin(async move { c.client.fs_info(&mut c.tree).await }),
                )
                .map(|_| ())
                .map_err(|e| self.error("connecting", e));
        }
        match self.lookup(self.settings.dir.clone()) {
            Ok(i) if i.is_directory => Ok(()),
            Ok(_) => Err(self.folder_error("opening the folder", Failure::NotFound)),
            Err(e) => Err(self.folder_error("opening the folder", e)),
        }
    }
}

impl SmbSource {
    /// The folder itself missing is a failure of the share as configured, not a missing file.
    fn folder_error(&self, doing: &str, e: Failure) -> SeamError {
        match e {
            Failure::NotFound => share_lost(format!(
                "{doing}: the folder {:?} is not in the share",
                self.settings.dir
            )),
            other => self.error(doing, other),
        }
    }
}

/// What one directory query asks for, at most: 1 MiB of entries (16 credits) where `smb2`
/// asks for 64 KiB. A 21,000-file folder then lists in 4 round trips, not 61: over a 10 ms
/// link a reconcile with nothing new took 1.95× `smbclient -c ls`, which asks for as much.
const LISTING_BUFFER: u32 = 1 << 20;

/// [`LISTING_BUFFER`], or less if the server transacts less at once.
fn listing_buffer(conn: &smb2::client::Connection) -> u32 {
    conn.params()
        .map_or(65536, |p| p.max_transact_size.min(LISTING_BUFFER))
}

/// What a whole-file read asks for first: a sensor file's size and more. A read is paid for in
/// credits by the size asked (one per 64 KiB), and asking for the server's largest read (8 MiB
/// from Samba, 128 credits) for a 1.5 KB file let only a few reads be in flight at once.
const FIRST_READ: u64 = 64 * 1024;

/// A file up to the server's read size as one compound request (open, read, close): one round
/// trip for a file up to [`FIRST_READ`], two for a larger one (asked again for its size, which
/// the refusal carries). Larger than one read is [`smb2::Error::FileTooLargeForSingleRead`].
async fn read_whole(
    conn: &mut smb2::client::Connection,
    tree: &smb2::Tree,
    path: &str,
) -> smb2::Result<Whole> {
    let max_read = conn.params().map_or(0, |p| u64::from(p.max_read_size));
    match compound::read(conn, tree, path, FIRST_READ).await {
        // Asked again only when one read can carry it: else it is streamed.
        Err(smb2::Error::FileTooLargeForSingleRead { size, .. }) if size <= max_read => {
            compound::read(conn, tree, path, size).await
        }
        answer => answer,
    }
}

/// [`meta_of`] a stat or an open.
pub(super) fn info_meta(i: &smb2::FileInfo) -> SourceMeta {
    meta_of(i.is_directory, &i.attributes, i.size, i.modified)
}

/// Size, mtime and kind as the source reports them; a reparse point (symlink, junction) is
/// never taken for a file.
pub(super) fn meta_of(
    is_dir: bool,
    attributes: &smb2::FileAttributes,
    size: u64,
    modified: smb2::pack::FileTime,
) -> SourceMeta {
    let kind = if attributes.is_reparse_point() {
        EntryKind::Symlink
    } else if is_dir {
        EntryKind::Dir
    } else {
        EntryKind::File
    };
    let mtime_ns = modified
        .to_system_time()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    SourceMeta {
        kind,
        size,
        mtime_ns,
    }
}

/// A large file's bytes, fetched a chunk at a time on the session's runtime.
struct Download {
    download: smb2::FileDownload<'static>,
    session: Arc<Session>,
    chunk: Cursor<Vec<u8>>,
    /// How long one chunk may take.
    timeout: std::time::Duration,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.chunk.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let next = self
                .session
                .block_on_within(self.timeout, self.download.next_chunk());
            let failed = match next {
                Ok(None) => return Ok(0),
                Ok(Some(Ok(bytes))) => {
                    self.chunk = Cursor::new(bytes);
                    continue;
                }
                Ok(Some(Err(e))) => failure(e),
                Err(stalled) => stalled,
            };
            // The kind rides inside the `io::Error` (`SeamError::from` gets it back).
            return Err(match failed {
                Failure::Share(why) => share_lost(why).into(),
                other => io::Error::other(format!("reading: {other:?}")),
            });
        }
    }
}
