//! The Bronze writer: the only code that writes under the Bronze root.
//!
//! A copy is two steps. [`Bronze::stage`] streams the source once into a temp file next to its
//! destination while hashing it with blake3. [`Bronze::publish`] makes a whole batch durable
//! with one filesystem flush, renames every temp file into place, and flushes again, so the
//! renames are durable too. Only after `publish` returns may the caller commit `Copied` events.
//!
//! What a crash leaves behind, by instant:
//! - during staging: temp files (dot-prefixed, never a final name); the file is not in the
//!   log, so it is staged again: the stale temp file is removed and created anew;
//! - after a rename, before the commit: a complete, durable file under its final name that the
//!   log does not know; the next copy finds it, hashes it and records it as `Adopted`;
//! - after the commit: nothing to do.
//!
//! An existing destination with different bytes is renamed aside (`NAME.kept-HASH`), never
//! overwritten.
//!
//! Nothing below the root is trusted to be what it seems: every folder on the way to a file
//! is looked at without following links (a link or a non-folder is refused, naming the path),
//! temp files are created exclusively and never through a link, and a link is never hashed
//! or adopted as if it were data. The root itself is configuration and may be a link.

use crate::fault::{FaultPlan, Op};
use crate::identity::{ContentHash, FileKey};
use crate::source::{EntryKind, SourceMeta};
use crate::store::event::{DeferReason, EventKind, Facts, Replaced};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TEMP_SUFFIX: &str = ".ingest-tmp";

/// A symbolic link (or Windows junction) found where Bronze expects its own file or folder.
/// Carried inside an `io::Error`, so callers can tell it apart with [`is_refused_link`].
#[derive(Debug)]
pub struct RefusedLink {
    pub path: PathBuf,
}

impl std::fmt::Display for RefusedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a symbolic link; Bronze never follows links below its root",
            self.path.display()
        )
    }
}

impl std::error::Error for RefusedLink {}

fn refused_link(path: &Path) -> io::Error {
    io::Error::other(RefusedLink {
        path: path.to_owned(),
    })
}

/// Whether `e` is Bronze refusing to follow a link.
pub fn is_refused_link(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<RefusedLink>())
}

/// A Bronze layer on a local filesystem.
#[derive(Debug, Clone)]
pub struct Bronze {
    root: PathBuf,
    /// Failures to inject (reliability tests only).
    faults: Option<Arc<FaultPlan>>,
}

/// A source file copied into a temp file, hashed, not yet durable or visible.
#[derive(Debug)]
pub struct Staged {
    /// Destination relative to the Bronze root, `/`-separated.
    pub rel: String,
    pub facts: Facts,
    pub hash: ContentHash,
    temp: PathBuf,
    dest: PathBuf,
    /// Hash of different bytes already at the destination; they are kept aside on publish.
    replaces: Option<ContentHash>,
}

/// What staging one file produced.
#[derive(Debug)]
pub enum StageOutcome {
    /// Ready to publish.
    Staged(Staged),
    /// The destination already holds exactly these bytes; nothing to publish.
    AlreadyThere {
        rel: String,
        facts: Facts,
        hash: ContentHash,
    },
    /// The file is still being written; try again later.
    Deferred { facts: Facts, reason: DeferReason },
}

/// What to do next with one file: publish its staged copy, or just record an event.
#[derive(Debug)]
pub enum Next {
    Publish(Staged),
    Record(EventKind),
}

impl StageOutcome {
    /// The staged copy to publish, or the event that settles the file without publishing
    /// (identical bytes already there, or deferred).
    pub fn next(self, file: FileKey) -> Next {
        match self {
            StageOutcome::Staged(s) => Next::Publish(s),
            StageOutcome::AlreadyThere { rel, facts, hash } => Next::Record(EventKind::Adopted {
                file,
                facts,
                hash,
                bronze: rel,
            }),
            StageOutcome::Deferred { facts, reason } => Next::Record(EventKind::Discovered {
                file,
                facts,
                reason,
            }),
        }
    }
}

impl Bronze {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Bronze {
            root: root.into(),
            faults: None,
        }
    }

    /// The same writer, failing where `plan` says (reliability tests).
    pub fn with_faults(mut self, plan: Arc<FaultPlan>) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Runs an injected fault for `op`, if a plan has one.
    pub fn inject(&self, op: Op) -> io::Result<()> {
        match &self.faults {
            Some(plan) => plan.before(op).map(|_| ()),
            None => Ok(()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a Bronze-relative path.
    pub fn path_of(&self, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Streams an opened source file into a temp file beside `rel`, hashing on the way.
    /// `before` is the file's metadata from the open handle; `recheck` looks it up again after
    /// the read, so a file that changed meanwhile is deferred instead of copied half-done.
    /// `rel` must come from `naming` (it is trusted to hold no `..` or absolute parts).
    pub fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: impl FnOnce() -> io::Result<Option<SourceMeta>>,
        rel: &str,
    ) -> io::Result<StageOutcome> {
        let dest = self.checked_parent(rel, true)?.join(file_name(rel));
        let existing = existing_hash(&dest)?;
        let temp = temp_path(&dest);
        let out = create_exclusive(&temp)?;
        let (hash, copied) = copy_hashing(reader, out, &temp, || self.inject(Op::Write))?;
        let after = match recheck() {
            Ok(after) => after,
            Err(e) => {
                // The source went away after the read (a dropped connection): no temp file
                // is left behind, and the file is fetched again next pass.
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        };
        if !unchanged(&before, after.as_ref(), copied) {
            fs::remove_file(&temp)?;
            let facts = after.map_or(facts_of(&before), |m| facts_of(&m));
            return Ok(StageOutcome::Deferred {
                facts,
                reason: DeferReason::ChangedWhileReading,
            });
        }
        let facts = facts_of(&before);
        if existing == Some(hash) {
            fs::remove_file(&temp)?;
            return Ok(StageOutcome::AlreadyThere {
                rel: rel.to_owned(),
                facts,
                hash,
            });
        }
        let staged = Staged {
            rel: rel.to_owned(),
            facts,
            hash,
            temp,
            dest,
            replaces: existing,
        };
        Ok(StageOutcome::Staged(staged))
    }

    /// The staged bytes, for checks that need the whole file before it is published (the
    /// sensor flow's JSON completeness check).
    pub fn open_staged(&self, staged: &Staged) -> io::Result<File> {
        File::open(&staged.temp)
    }

    /// What is at `rel`, looked at without following any link below the root: `None` if it
    /// (or a folder on the way) is missing, a [`RefusedLink`] error if a link is on the way or
    /// at `rel` itself.
    pub fn lstat(&self, rel: &str) -> io::Result<Option<fs::Metadata>> {
        let dir = match self.checked_parent(rel, false) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let path = dir.join(file_name(rel));
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => Err(refused_link(&path)),
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// blake3 of the regular file at `rel`, never through a link (`NotFound` if missing).
    pub fn hash(&self, rel: &str) -> io::Result<ContentHash> {
        let path = self.checked_parent(rel, false)?.join(file_name(rel));
        hash_regular(&path)
    }

    /// The absolute folder of `rel`'s file, after checking every folder on the way down from
    /// the root: none may be a link, each must be a folder. With `create`, missing folders
    /// are made one at a time (each checked again if a concurrent copy made it first).
    fn checked_parent(&self, rel: &str, create: bool) -> io::Result<PathBuf> {
        let mut dir = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts[..parts.len().saturating_sub(1)].iter().enumerate() {
            dir.push(part);
            match fs::symlink_metadata(&dir) {
                Ok(m) => refuse_unless_dir(&dir, &m)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    if i == 0 {
                        // The root is configuration (it may be a link): made as a whole.
                        fs::create_dir_all(&self.root)?;
                    }
                    create_one_dir(&dir)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(dir)
    }

    /// Removes one of our temp files (`rel` must name one); a link on the way is refused,
    /// and unlinking never follows a link at the name itself.
    pub fn remove_temp(&self, rel: &str) -> io::Result<()> {
        let name = file_name(rel);
        if !is_temp_name(OsStr::new(name)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel} is not a temp file"),
            ));
        }
        fs::remove_file(self.checked_parent(rel, false)?.join(name))
    }

    /// Drops a staged copy without publishing it.
    pub fn discard(&self, staged: Staged) -> io::Result<()> {
        fs::remove_file(staged.temp)
    }

    /// Makes a batch durable and visible. Returns, per staged file in order, what it replaced
    /// or the error that kept it from being published (that file is then not copied).
    pub fn publish(&self, batch: &[Staged]) -> Vec<io::Result<Option<Replaced>>> {
        let flushed = self
            .inject(Op::Flush)
            .and_then(|()| self.flush(batch.iter().map(|s| s.temp.as_path())));
        if let Err(e) = flushed {
            // Nothing was published: drop the temp files (the files are staged again later).
            batch.iter().for_each(remove_temp);
            return batch
                .iter()
                .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                .collect();
        }
        let results: Vec<_> = batch
            .iter()
            .map(|s| {
                let renamed = self.inject(Op::Rename).and_then(|()| rename_into_place(s));
                if renamed.is_err() {
                    remove_temp(s);
                }
                renamed
            })
            .collect();
        if let Err(e) = self.flush_dirs(batch) {
            return batch
                .iter()
                .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                .collect();
        }
        results
    }

    /// One flush for the whole batch where the OS offers it (Linux `syncfs`), else per file.
    fn flush<'a>(&self, files: impl Iterator<Item = &'a Path>) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let _ = files;
            self.syncfs()
        }
        #[cfg(not(target_os = "linux"))]
        {
            files.map(sync_file).collect()
        }
    }

    /// Makes the batch's renames durable. Linux: the same single `syncfs`. Other Unix: one
    /// fsync per folder, which commits the folder's entries. Windows has no folder flush
    /// (`FlushFileBuffers` is documented for files and volumes; a volume handle needs
    /// administrator rights), so it flushes each renamed file instead: on NTFS that commits the
    /// file's metadata, its new name included, through the volume's journal, which is what
    /// makes a rename survive a crash there.
    fn flush_dirs(&self, batch: &[Staged]) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let _ = batch;
            self.syncfs()
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            let unique: std::collections::BTreeSet<_> =
                batch.iter().filter_map(|s| s.dest.parent()).collect();
            unique
                .into_iter()
                .map(|d| File::open(d)?.sync_all())
                .collect()
        }
        #[cfg(not(unix))]
        {
            // A file whose rename failed may be missing; older bytes kept aside moved too.
            let kept = batch
                .iter()
                .filter_map(|s| s.replaces.map(|h| kept_aside_path(&s.dest, h)));
            let moved: Vec<PathBuf> = batch.iter().map(|s| s.dest.clone()).chain(kept).collect();
            moved
                .iter()
                .filter(|p| p.exists())
                .map(|p| sync_file(p))
                .collect()
        }
    }

    #[cfg(target_os = "linux")]
    fn syncfs(&self) -> io::Result<()> {
        let root = File::open(&self.root)?;
        rustix::fs::syncfs(&root).map_err(io::Error::from)
    }
}

/// Flushes one file's data and metadata to disk. The handle is opened for writing: on Windows
/// `sync_all` is `FlushFileBuffers`, which refuses a read-only handle ("Access denied", os
/// error 5), and that refusal once failed every copy there. Opening for write neither
/// truncates nor changes the file.
#[cfg(not(target_os = "linux"))]
fn sync_file(path: &Path) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.sync_all()
}

fn remove_temp(s: &Staged) {
    if let Err(e) = fs::remove_file(&s.temp) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(temp = %s.temp.display(), error = %e, "cannot remove a temp file");
        }
    }
}

fn rename_into_place(s: &Staged) -> io::Result<Option<Replaced>> {
    let replaced = match s.replaces {
        Some(hash) => {
            let kept = kept_aside_path(&s.dest, hash);
            fs::rename(&s.dest, &kept)?;
            let kept_as = format!("{}.kept-{}", s.rel, &hash.to_hex()[..16]);
            Some(Replaced { hash, kept_as })
        }
        None => None,
    };
    fs::rename(&s.temp, &s.dest)?;
    Ok(replaced)
}

fn kept_aside_path(dest: &Path, hash: ContentHash) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".kept-{}", &hash.to_hex()[..16]));
    dest.with_file_name(name)
}

/// The last part of a Bronze-relative path.
fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// A folder on the way to a Bronze file must be a real folder, not a link to one.
fn refuse_unless_dir(path: &Path, m: &fs::Metadata) -> io::Result<()> {
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
fn create_one_dir(dir: &Path) -> io::Result<()> {
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
        tracing::warn!(path = %path.display(), "removed a link planted at a temp file's name");
    }
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

/// Temp files are dot-prefixed: the name grammar rejects them, so they are never mistaken for
/// data. One writer per store means a fixed name per destination is safe.
pub fn temp_path(dest: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dest.file_name().unwrap_or_default());
    name.push(TEMP_SUFFIX);
    dest.with_file_name(name)
}

/// Hash of a regular file already at `dest`, `None` if nothing is there. A link there is
/// refused: neither hashed (its target is not ours) nor replaced.
fn existing_hash(dest: &Path) -> io::Result<Option<ContentHash>> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => Err(refused_link(dest)),
        Ok(m) if m.is_file() => Ok(Some(hash_regular(dest)?)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a regular file", dest.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// blake3 of the regular file at `path`: a link there is refused, and so is anything else
/// that is not a regular file (a FIFO would block the read forever).
fn hash_regular(path: &Path) -> io::Result<ContentHash> {
    let m = fs::symlink_metadata(path)?;
    if m.file_type().is_symlink() {
        return Err(refused_link(path));
    }
    let mut file = open_no_follow(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    hash_reader(&mut file)
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

fn hash_reader(file: &mut File) -> io::Result<ContentHash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// Copies `reader` into `out` (the file at `temp`) while hashing; `before_write` runs before
/// each write (faults).
fn copy_hashing(
    reader: &mut dyn Read,
    mut out: File,
    temp: &Path,
    before_write: impl Fn() -> io::Result<()>,
) -> io::Result<(ContentHash, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = fs::remove_file(temp);
                return Err(e);
            }
        };
        hasher.update(&buf[..n]);
        if let Err(e) = before_write().and_then(|()| out.write_all(&buf[..n])) {
            let _ = fs::remove_file(temp);
            return Err(e);
        }
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}

/// The file is complete if it still has the size and mtime it had when opened, and we read
/// exactly that many bytes.
fn unchanged(before: &SourceMeta, after: Option<&SourceMeta>, copied: u64) -> bool {
    after.is_some_and(|a| {
        a.kind == EntryKind::File
            && a.size == before.size
            && a.mtime_ns == before.mtime_ns
            && copied == before.size
    })
}

pub fn facts_of(m: &SourceMeta) -> Facts {
    Facts {
        size: m.size,
        mtime_ns: m.mtime_ns,
    }
}

/// Whether a Bronze file name is one of our temp files (for cleanup and reports).
pub fn is_temp_name(name: &OsStr) -> bool {
    let n = name.to_string_lossy();
    n.starts_with('.') && n.ends_with(TEMP_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(bytes: &[u8]) -> SourceMeta {
        SourceMeta {
            kind: EntryKind::File,
            size: bytes.len() as u64,
            mtime_ns: 1_692_000_000_000_000_000,
        }
    }

    fn stage(bronze: &Bronze, rel: &str, bytes: &[u8]) -> Staged {
        let m = meta(bytes);
        match bronze
            .stage(&mut &bytes[..], m, || Ok(Some(m)), rel)
            .unwrap()
        {
            StageOutcome::Staged(s) => s,
            other => panic!("{rel} not staged: {other:?}"),
        }
    }

    /// Publishing flushes, renames and flushes again on every platform: both files of a batch
    /// become visible with their bytes, no temp file is left, and different bytes already at a
    /// destination are kept aside. (On Windows this once failed every file with "Access
    /// denied": the flush opened files read-only.)
    #[test]
    fn publish_makes_a_batch_visible_and_keeps_older_bytes_aside() {
        let dir = tempfile::tempdir().unwrap();
        let bronze = Bronze::new(dir.path().join("bronze"));
        let first = stage(&bronze, "a/2023/08/18/10/one.json", b"one");
        let results = bronze.publish(&[first]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let batch = [
            stage(&bronze, "a/2023/08/18/10/one.json", b"one, rewritten"),
            stage(&bronze, "a/2023/08/18/11/two.json", b"two"),
        ];
        let results = bronze.publish(&batch);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let replaced = results[0].as_ref().unwrap().as_ref().expect("kept aside");
        assert_eq!(fs::read(bronze.path_of(&replaced.kept_as)).unwrap(), b"one");
        assert_eq!(
            fs::read(bronze.path_of("a/2023/08/18/10/one.json")).unwrap(),
            b"one, rewritten"
        );
        assert_eq!(
            fs::read(bronze.path_of("a/2023/08/18/11/two.json")).unwrap(),
            b"two"
        );
        let hour = bronze.path_of("a/2023/08/18/10");
        let temps = fs::read_dir(hour)
            .unwrap()
            .filter(|e| is_temp_name(&e.as_ref().unwrap().file_name()))
            .count();
        assert_eq!(temps, 0);
    }
}
