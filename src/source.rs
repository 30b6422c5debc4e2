//! Where files come from. A [`Source`] answers three questions (is this name there, what names
//! are there, give me its bytes) and counts how often it was asked, because on a network share
//! every question is a round trip: performance is pinned by counting lookups, not by timing.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub fn facts(&self) -> crate::store::event::Facts {
        crate::store::event::Facts {
            size: self.size,
            mtime_ns: self.mtime_ns,
        }
    }
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

/// Work done against a source, reported in pass summaries and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    pub lookups: AtomicU64,
    pub listings: AtomicU64,
    pub opens: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Work {
    pub lookups: u64,
    pub listings: u64,
    pub opens: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Work {
        Work {
            lookups: self.lookups.load(Ordering::Relaxed),
            listings: self.listings.load(Ordering::Relaxed),
            opens: self.opens.load(Ordering::Relaxed),
        }
    }
}

impl Work {
    pub fn since(self, before: Work) -> Work {
        Work {
            lookups: self.lookups - before.lookups,
            listings: self.listings - before.listings,
            opens: self.opens - before.opens,
        }
    }
}

/// A flat folder of files (the mounted SMB share, or a test double).
pub trait Source: Sync {
    /// One metadata lookup, not following symlinks. `Ok(None)` means the name is absent.
    fn stat(&self, name: &OsStr) -> io::Result<Option<SourceMeta>>;
    /// One full listing of the folder.
    fn list(&self) -> io::Result<Vec<Listed>>;
    /// Opens a regular file for reading; the metadata is taken from the open handle.
    fn open(&self, name: &OsStr) -> io::Result<(Box<dyn Read + Send>, SourceMeta)>;
    fn counters(&self) -> &Counters;
    /// A human description (path), for messages.
    fn describe(&self) -> String;
    /// Fails when the source as a whole is unreachable (unmounted share, wrong path), so a
    /// pass never draws "missing" conclusions from a source that is not there.
    fn check(&self) -> io::Result<()> {
        Ok(())
    }
    /// Whether the folder holds no entry at all. A lost CIFS or FUSE mount leaves its mount
    /// point as an empty folder that [`Source::check`] accepts, so a share that had files and
    /// now lists none is taken for lost. Asked only before concluding that a file is gone.
    fn is_empty(&self) -> io::Result<bool> {
        self.list().map(|entries| entries.is_empty())
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

/// A local or mounted folder, read with `std::fs`.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    counters: Counters,
}

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource {
            root: root.into(),
            counters: Counters::default(),
        }
    }
}

impl Source for DirSource {
    fn stat(&self, name: &OsStr) -> io::Result<Option<SourceMeta>> {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        match fs::symlink_metadata(self.root.join(name)) {
            Ok(m) => Ok(Some(meta_of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list(&self) -> io::Result<Vec<Listed>> {
        self.counters.listings.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            // d_type from the directory entry: no extra lookup per file on Linux.
            let kind = entry.file_type().map(kind_of).unwrap_or(EntryKind::Other);
            // Size and mtime let a reconcile see a source that changed after it was ingested.
            // Windows: free, from the directory search itself. Unix: one `fstatat` relative to
            // the open folder per entry (part of the listing, not counted as lookups), answered
            // from the attribute cache on local disks and kernel CIFS mounts.
            let meta = entry.metadata().ok().map(|m| meta_of(&m));
            out.push(Listed {
                name: entry.file_name(),
                kind,
                meta,
            });
        }
        Ok(out)
    }

    fn open(&self, name: &OsStr) -> io::Result<(Box<dyn Read + Send>, SourceMeta)> {
        self.counters.opens.fetch_add(1, Ordering::Relaxed);
        let file = open_no_follow(&self.root.join(name))?;
        let meta = meta_of(&file.metadata()?);
        Ok((Box::new(file), meta))
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    /// Reads at most the first entry: one round trip on a network share, not a listing.
    fn is_empty(&self) -> io::Result<bool> {
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(fs::read_dir(&self.root)?.next().transpose()?.is_none())
    }

    fn check(&self) -> io::Result<()> {
        if fs::metadata(&self.root)?.is_dir() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ))
        }
    }
}

/// Opens for reading without following a symlink (one swapped in after the lookup would
/// point outside the share) and without blocking on a FIFO; the caller checks the kind from
/// the handle. Linux only: elsewhere the open follows a symlink swapped in after the lookup
/// (the lookup's kind check still skips a symlink that was there). On Windows the equivalent,
/// `FILE_FLAG_OPEN_REPARSE_POINT`, would also open data-deduplicated and cloud-placeholder
/// files as their reparse stubs instead of their data, so it waits for a test on real Windows.
fn open_no_follow(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    options.open(path)
}

fn kind_of(t: fs::FileType) -> EntryKind {
    if t.is_symlink() {
        EntryKind::Symlink
    } else if t.is_dir() {
        EntryKind::Dir
    } else if t.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

fn meta_of(m: &fs::Metadata) -> SourceMeta {
    let mtime_ns = m
        .modified()
        .ok()
        .and_then(|t| chrono::DateTime::<chrono::Utc>::from(t).timestamp_nanos_opt())
        .unwrap_or(0);
    SourceMeta {
        kind: kind_of(m.file_type()),
        size: m.len(),
        mtime_ns,
    }
}

#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;

    /// A share given as a mapped drive, a UNC path or a verbatim (`\\?\`) path: a name is
    /// looked up directly inside the share's folder. No SMB server is reachable under Wine, so
    /// a local folder given in verbatim form (the form Windows turns UNC paths into) is read
    /// for real: check, stat, list and open.
    #[test]
    fn share_paths_as_drive_unc_and_verbatim_reach_the_files() {
        let name = "18.08.2023 1000_A_received.json";
        for root in [
            r"Z:\",
            r"\\server\share\folder",
            r"\\?\UNC\server\share\folder",
        ] {
            let path = Path::new(root).join(name);
            assert_eq!(path.parent(), Some(Path::new(root)), "{root}");
            assert_eq!(path.file_name(), Some(OsStr::new(name)), "{root}");
        }
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), b"x").unwrap();
        let verbatim = PathBuf::from(format!(r"\\?\{}", dir.path().display()));
        let source = DirSource::new(&verbatim);
        source.check().unwrap();
        assert_eq!(
            source.stat(OsStr::new(name)).unwrap().map(|m| m.size),
            Some(1)
        );
        assert_eq!(source.list().unwrap().len(), 1);
        let (mut reader, _) = source.open(OsStr::new(name)).unwrap();
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"x");
    }
}
