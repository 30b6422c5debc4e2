//! Filesystem primitives Bronze's folder implementation is built from, none of which follows
//! a link: checked folder creation, exclusive creation of a temp file, removal of a planted
//! link (the link, never its target), hashing of a regular file, and the flushes that make
//! writes and renames durable. What to do with them (which names, when to flush, what a
//! refusal means for a pass) is [`LocalBronze`](super::LocalBronze)'s policy, not theirs.

use super::layout;
use super::refused_link;
use crate::identity::ContentHash;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Flushes the whole filesystem holding `root` (Linux `syncfs`): one call for a batch's data,
/// or for its renames, instead of one per file.
#[cfg(target_os = "linux")]
pub(super) fn syncfs(root: &Path) -> io::Result<()> {
    let root = File::open(root)?;
    rustix::fs::syncfs(&root).map_err(io::Error::from)
}

/// Modification time in nanoseconds since the epoch (0 where the filesystem has none).
pub(super) fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| chrono::DateTime::<chrono::Utc>::from(t).timestamp_nanos_opt())
        .unwrap_or(0)
}

/// Flushes one file's data and metadata to disk. The handle is opened for writing: on Windows
/// `sync_all` is `FlushFileBuffers`, which refuses a read-only handle ("Access denied", os
/// error 5), and that refusal once failed every copy there. Opening for write neither
/// truncates nor changes the file.
#[cfg(not(target_os = "linux"))]
pub(super) fn sync_file(path: &Path) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.sync_all()
}

/// A folder on the way to a Bronze file must be a real folder, not a link to one.
pub(super) fn refuse_unless_dir(path: &Path, m: &fs::Metadata) -> io::Result<()> {
    if m.file_type().is_symlink() {
        Err(refused_link(path))
    } else if m.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is in Bronze's way: not a folder", path.display()),
        ))
    }
}

/// Makes one folder whose parent was checked.
pub(super) fn create_one_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        // Another copy thread made it meanwhile; what is there now must still be a folder.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            refuse_unless_dir(dir, &fs::symlink_metadata(dir)?)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` for writing, exclusively: it never opens an existing file and never follows
/// a link (`O_EXCL` fails on a link, even a dangling one). Something left at the name by a
/// crash (our stale temp file) or planted there (a link) is removed first; removing a link
/// removes the link, never its target.
pub fn create_exclusive(path: &Path) -> io::Result<File> {
    match open_new(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            remove_stale(path)?;
            open_new(path)
        }
        other => other,
    }
}

fn open_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    #[cfg(windows)]
    {
        // FILE_FLAG_OPEN_REPARSE_POINT: act on a reparse point (link, junction) itself.
        use std::os::windows::fs::OpenOptionsExt;
        options.custom_flags(0x0020_0000);
    }
    options.open(path)
}

fn remove_stale(path: &Path) -> io::Result<()> {
    let kind = fs::symlink_metadata(path)?.file_type();
    if kind.is_symlink() {
        return remove_link(path, kind, "a temp file's name");
    }
    fs::remove_file(path)
}

/// Removes a link planted at one of Bronze's own names (`at` says which kind): the link
/// itself, never its target. Logged as a warning with where it pointed, so the removal is on
/// record (the event log has no field for it).
pub(super) fn remove_link(path: &Path, kind: fs::FileType, at: &str) -> io::Result<()> {
    let target = fs::read_link(path)
        .map_or_else(|e| format!("unreadable: {e}"), |t| t.display().to_string());
    tracing::warn!(path = %path.display(), %target, at, "removed a link planted in Bronze (never followed)");
    #[cfg(not(windows))]
    let _ = kind;
    #[cfg(windows)]
    {
        // A link to a folder is removed as a folder on Windows (the link, not its target).
        use std::os::windows::fs::FileTypeExt;
        if kind.is_symlink_dir() {
            return fs::remove_dir(path);
        }
    }
    fs::remove_file(path)
}

/// The temp name beside `dest` that a file is written under before it is renamed to `dest`
/// (the layout's temp name; also used for the hook's manifest beside the store).
pub fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(layout::temp_rel(&name))
}

/// blake3 of the regular file at `path`: a link there is refused, and so is anything else
/// that is not a regular file (a FIFO would block the read forever).
pub(super) fn hash_regular(path: &Path) -> io::Result<ContentHash> {
    let m = fs::symlink_metadata(path)?;
    if m.file_type().is_symlink() {
        return Err(refused_link(path));
    }
    hash_opened(open_no_follow(path)?, path)
}

/// blake3 of an opened file, refused unless it is a regular file.
pub(super) fn hash_opened(mut file: File, path: &Path) -> io::Result<ContentHash> {
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    ContentHash::of_reader(&mut file)
}

/// Opens `rel` under the folder `root` for reading in one call, where the OS itself refuses
/// a link anywhere on the way and any way out of `root` (Linux 5.6+: `openat2` with
/// `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`; `root` itself may be a link, as configured).
/// `None` when it cannot say yes (a link, a missing file, an older kernel, another OS): the
/// caller then checks the path folder by folder, which also names what is wrong. Saves an
/// audit the `lstat` of every folder on the way, a third of its hashing time.
pub(super) fn open_beneath(root: &Path, rel: &str) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let dir = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
        let file = rustix::fs::openat2(&dir, rel, flags, Mode::empty(), resolve).ok()?;
        Some(File::from(file))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (root, rel);
        None
    }
}

/// Replaces `path` with `bytes`, all or nothing and durably: written under the temp name beside
/// it (exclusively, never through a link), flushed, renamed over it (a rename replaces a link
/// at `path` itself, never its target), and the rename flushed: the folder on Unix (with
/// `new_dirs` folders above it, which were just made); on Windows, which has no folder flush,
/// the renamed file (see `LocalBronze::flush_dirs`).
pub(super) fn replace_durably(path: &Path, bytes: &[u8], new_dirs: usize) -> io::Result<()> {
    use std::io::Write;
    let temp = temp_path(path);
    let written = create_exclusive(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&temp, path)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    #[cfg(unix)]
    for dir in path.ancestors().skip(1).take(1 + new_dirs) {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(windows)]
    {
        let _ = new_dirs;
        OpenOptions::new().write(true).open(path)?.sync_all()?;
    }
    Ok(())
}

/// The bytes of the regular file at `path`, never through a link; `None` if nothing is there;
/// refused when larger than `limit`.
pub(super) fn read_regular(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Err(refused_link(path)),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let file = open_no_follow(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(path.display(), limit));
    }
    let mut bytes = Vec::new();
    // Bounded again: the file may grow between the check and the read.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path.display(), limit));
    }
    Ok(Some(bytes))
}

/// A file of ingest's own in Bronze larger than any it writes.
pub(super) fn too_large(what: impl std::fmt::Display, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what} is larger than {limit} bytes: not a file ingest wrote"),
    )
}

/// Opens for reading; on Linux the kernel also refuses a link swapped in after the lookup,
/// and does not block on a FIFO.
fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::OFlags;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32);
    }
    options.open(path)
}
