//! The share as a local or mounted folder (a Windows drive letter or UNC path, a CIFS or FUSE
//! mount), read with `std::fs`.

use super::{EntryKind, Listed, Opened, Source, SourceMeta};
use crate::parallel::parallel_chunks;
use crate::seam::{Kind, Result, SeamError};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A local or mounted folder, read with `std::fs`.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }
}

impl Source for DirSource {
    fn stat(&self, name: &OsStr) -> Result<Option<SourceMeta>> {
        match fs::symlink_metadata(self.root.join(name)) {
            Ok(m) => Ok(Some(meta_of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The folder itself failing to list is the share failing as a whole (`Lost`).
    fn list(&self) -> Result<Vec<Listed>> {
        let entries = fs::read_dir(&self.root)
            .map_err(lost)?
            .collect::<io::Result<Vec<_>>>()
            .map_err(lost)?;
        // Size and mtime let a reconcile see a source that changed after it was ingested.
        // Windows: free, from the directory search itself. Unix: one `fstatat` relative to the
        // open folder per entry (part of the listing, not counted as lookups), answered from
        // the attribute cache on local disks and kernel CIFS mounts, and made on a few threads:
        // they were 70% of a 246,000-file reconcile on one.
        let threads = if cfg!(unix) { STAT_THREADS } else { 1 };
        Ok(parallel_chunks(&entries, threads, |part| {
            part.iter().map(listed).collect()
        }))
    }

    fn open(&self, name: &OsStr) -> Result<Opened> {
        let file = open_no_follow(&self.root.join(name))?;
        let meta = meta_of(&file.metadata()?);
        Ok(Opened::new(Box::new(file), meta))
    }

    fn describe(&self) -> String {
        format!("the share {}", self.root.display())
    }

    /// Reads at most the first entry: one round trip on a network share, not a listing.
    fn peek_empty(&self) -> Option<Result<bool>> {
        let first = || fs::read_dir(&self.root)?.next().transpose();
        Some(first().map(|entry| entry.is_none()).map_err(lost))
    }

    fn check(&self) -> Result<()> {
        if fs::metadata(&self.root).map_err(lost)?.is_dir() {
            Ok(())
        } else {
            Err(lost(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )))
        }
    }
}

/// Threads a listing's stats are made on at most (and no more than the machine's cores): the
/// stats of a local disk are CPU work in the kernel (path lookup, inode attributes); a FUSE
/// mount that serves one request at a time (smbnetfs) is neither faster nor slower with them.
const STAT_THREADS: usize = 4;

/// A directory entry as listed: its name, its kind from the entry (d_type on Linux, no lookup)
/// and its size and mtime.
fn listed(entry: &fs::DirEntry) -> Listed {
    Listed {
        name: entry.file_name(),
        kind: entry.file_type().map(kind_of).unwrap_or(EntryKind::Other),
        meta: entry.metadata().ok().map(|m| meta_of(&m)),
    }
}

/// A failure of the folder itself (missing, unmounted, not a folder): the share as a whole.
fn lost(e: io::Error) -> SeamError {
    SeamError::new(Kind::Lost, e)
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
    use std::io::Read;

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
        let mut reader = source.open(OsStr::new(name)).unwrap().reader;
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"x");
    }
}
