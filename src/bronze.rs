//! The Bronze writer: the only code that writes under the Bronze root.
//!
//! A copy is two steps. [`Bronze::stage`] streams the source once into a temp file next to its
//! destination while hashing it with blake3. [`Bronze::publish`] makes a whole batch durable
//! with one filesystem flush, renames every temp file into place, and flushes again, so the
//! renames are durable too. Only after `publish` returns may the caller commit `Copied` events.
//!
//! What a crash leaves behind, by instant:
//! - during staging: temp files (dot-prefixed, never a final name); the file is not in the
//!   log, so it is staged again and the same temp name is overwritten;
//! - after a rename, before the commit: a complete, durable file under its final name that the
//!   log does not know; the next copy finds it, hashes it and records it as `Adopted`;
//! - after the commit: nothing to do.
//!
//! An existing destination with different bytes is renamed aside (`NAME.kept-HASH`), never
//! overwritten.

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
        let dest = self.path_of(rel);
        let dir = dest.parent().expect("Bronze paths have a folder");
        fs::create_dir_all(dir)?;
        let existing = existing_hash(&dest)?;
        let temp = temp_path(&dest);
        let (hash, copied) = copy_hashing(reader, &temp, || self.inject(Op::Write))?;
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

/// Temp files are dot-prefixed: the name grammar rejects them, so they are never mistaken for
/// data. One writer per store means a fixed name per destination is safe.
fn temp_path(dest: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dest.file_name().unwrap_or_default());
    name.push(TEMP_SUFFIX);
    dest.with_file_name(name)
}

/// Hash of a regular file already at `dest`, `None` if nothing is there.
fn existing_hash(dest: &Path) -> io::Result<Option<ContentHash>> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_file() => Ok(Some(hash_file(dest)?)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a regular file", dest.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// blake3 of a file's content.
pub fn hash_file(path: &Path) -> io::Result<ContentHash> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

/// Copies `reader` into `temp` while hashing; `before_write` runs before each write (faults).
fn copy_hashing(
    reader: &mut dyn Read,
    temp: &Path,
    before_write: impl Fn() -> io::Result<()>,
) -> io::Result<(ContentHash, u64)> {
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)?;
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
