//! Where files come from. A [`Source`] answers three questions (is this name there, what names
//! are there, give me its bytes). On a network share every question is a round trip, so
//! performance is pinned by counting them, not by timing: every source a run uses is wrapped
//! in one [`Counted`], which counts for all of them.
//!
//! Every call fails with a [`SeamError`] whose kind is the contract: a missing name is
//! `NotFound` (or `Ok(None)` for a lookup), a failure of the source as a whole (unreachable,
//! dropped, refusing the login) is `Lost`, one file's problem is `Other`. A source never says
//! `Unreachable` or `Refused`: those are Bronze's, so a copy that meets an outage knows whose.

use crate::facts::SourceVersion;
use crate::seam::{Result, SeamError};
use crate::store::projection::FileState;
use std::ffi::{OsStr, OsString};
use std::io::Read;

/// What a directory entry is. Only regular files are ever copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// Size and modification time of a source file, as the source reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceMeta {
    pub kind: EntryKind,
    pub size: u64,
    /// Nanoseconds since the Unix epoch (UTC).
    pub mtime_ns: i64,
}

impl SourceMeta {
    /// What the log records about a source file's version.
    pub fn facts(&self) -> SourceVersion {
        SourceVersion {
            size: self.size,
            mtime_ns: self.mtime_ns,
        }
    }
}

/// A file opened for reading ([`Source::open`]).
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    /// Size, mtime and kind from the open handle.
    pub meta: SourceMeta,
    /// The same once every byte was read, when the source saw the file again in the round trip
    /// that read it whole (an SMB compound whose CLOSE reports the attributes): the copy's
    /// check that the file did not change while read then needs no lookup of its own.
    pub after_read: Option<SourceMeta>,
}

impl Opened {
    /// A file whose state after the read is known only by looking it up again.
    pub fn new(reader: Box<dyn Read + Send>, meta: SourceMeta) -> Opened {
        Opened {
            reader,
            meta,
            after_read: None,
        }
    }
}

/// A file's metadata once read, for the copy's check (`Bronze::stage`) that it did not
/// change meanwhile: what the read saw ([`Opened::after_read`]) when it is what the open saw
/// (`before`), else `lookup`'s answer. A difference is looked at again, never concluded from
/// the read alone: a server may report the two from different places (Samba's CLOSE stats
/// the path, its CREATE may carry a write time another open set), and one reporting zeros
/// would otherwise defer every file forever.
pub fn recheck(
    before: &SourceMeta,
    after_read: Option<SourceMeta>,
    lookup: impl FnOnce() -> Result<Option<SourceMeta>>,
) -> Result<Option<SourceMeta>> {
    match after_read {
        Some(seen) if seen == *before => Ok(Some(seen)),
        _ => lookup(),
    }
}

/// Whether an ingested file's source changed since: its size or mtime now (`now`, from a
/// listing or a lookup) differ from what was recorded when it was copied. An adopted file's
/// facts may be its Bronze copy's (`ingest adopt`, a settled crash), whose mtime is not the
/// source's: only its size is compared. Without facts on either side nothing is concluded.
pub fn source_changed(
    state: &FileState,
    recorded: Option<&SourceVersion>,
    now: Option<&SourceMeta>,
) -> bool {
    let (Some(now), Some(then)) = (now, recorded) else {
        return false;
    };
    let mtime_known = *state == FileState::Copied;
    now.kind == EntryKind::File
        && (now.size != then.size || (mtime_known && now.mtime_ns != then.mtime_ns))
}

/// One entry of a listing. The name is raw: it may be anything the filesystem allows.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: OsString,
    pub kind: EntryKind,
    /// Size and mtime, when the listing carries them (the reconcile compares them with the
    /// index to find sources that changed after they were ingested).
    pub meta: Option<SourceMeta>,
}

/// Work done against a source ([`Counted::work`]), reported in pass summaries and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceWork {
    pub lookups: u64,
    pub listings: u64,
    pub opens: u64,
}

impl SourceWork {
    pub fn since(self, before: SourceWork) -> SourceWork {
        SourceWork {
            lookups: self.lookups - before.lookups,
            listings: self.listings - before.listings,
            opens: self.opens - before.opens,
        }
    }
}

/// A flat folder of files (the mounted SMB share, or a test double).
pub trait Source: Sync {
    /// One metadata lookup, not following symlinks. `Ok(None)` means the name is absent.
    fn stat(&self, name: &OsStr) -> Result<Option<SourceMeta>>;
    /// One full listing of the folder.
    fn list(&self) -> Result<Vec<Listed>>;
    /// Opens a regular file for reading; the metadata is taken from the open handle. A read
    /// that fails because the source as a whole went away carries a `Lost` [`SeamError`]
    /// inside its `io::Error` (`SeamError::from` gets it back).
    fn open(&self, name: &OsStr) -> Result<Opened>;
    /// A human description (path), for messages.
    fn describe(&self) -> String;
    /// Fails when the source as a whole is unreachable (unmounted share, wrong path), so a
    /// pass never draws "missing" conclusions from a source that is not there.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the folder holds no entry, when the source can tell from its first entry alone
    /// (one round trip instead of a listing); `None` when only a listing tells. Callers ask
    /// [`is_empty`], which falls back to the listing.
    fn peek_empty(&self) -> Option<Result<bool>> {
        None
    }
    /// How many lookups are worth having in flight at once: 1 where a lookup is a local call
    /// (starting threads for it costs more than the lookup: a prediction pass over a local
    /// folder took 1.9× as long), more for a client whose every call is a round trip.
    fn lookups_in_flight(&self) -> usize {
        1
    }
}

/// Whether `e`, from a call on a source, means the source as a whole went away (a dropped
/// connection) rather than one file failing: the pass then ends as an outage.
pub fn lost(e: &SeamError) -> bool {
    e.kind() == crate::seam::Kind::Lost
}

/// Whether `source`'s folder holds no entry at all: its [`Source::peek_empty`], else a
/// listing. A lost CIFS or FUSE mount leaves its mount point as an empty folder that
/// [`Source::check`] accepts, so a share that had files and now lists none is taken for lost.
/// Asked only before concluding that a file is gone. A free function, not a method a source
/// could override: through a [`Counted`] the listing it may take is counted as one.
pub fn is_empty(source: &(impl Source + ?Sized)) -> Result<bool> {
    match source.peek_empty() {
        Some(answer) => answer,
        None => source.list().map(|entries| entries.is_empty()),
    }
}

/// `host:port` as a client dials it and messages name it (`[v6]:port` for an IPv6 host).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Turns raw name bytes from the store back into a name to look up. `None` only for bytes
/// that cannot name a file on this platform (such names are never pending).
pub fn os_name(bytes: &[u8]) -> Option<OsString> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(OsStr::from_bytes(bytes).to_owned())
    }
    #[cfg(not(unix))]
    {
        // Windows names are stored as their WTF-8 bytes (`as_encoded_bytes`); std offers no
        // safe way back for ill-formed UTF-16, which no sensor or forecast name is.
        String::from_utf8(bytes.to_vec()).ok().map(OsString::from)
    }
}

mod counted;
mod dir;
pub mod secret;
pub mod sftp;
pub mod smb;

pub use counted::Counted;
pub use dir::DirSource;
#[cfg(feature = "sftp")]
pub use sftp::SftpSource;
#[cfg(feature = "smb-native")]
pub use smb::SmbSource;
