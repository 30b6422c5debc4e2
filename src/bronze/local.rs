//! Bronze on a local (or mounted) filesystem: the only code that touches files under the
//! Bronze root.
//!
//! A copy is two steps. [`LocalBronze::stage`] streams the source once into a temp file next
//! to its destination while hashing it with blake3. [`LocalBronze::publish`] makes a whole batch
//! durable with one filesystem flush, renames every temp file into place, and flushes again,
//! so the renames are durable too.
//!
//! What a crash leaves behind, by instant:
//! - during staging: temp files (dot-prefixed, never a final name); the file is not in the
//!   log, so it is staged again: the stale temp file is removed and created anew;
//! - after a rename, before the commit: a complete, durable file under its final name that the
//!   log does not know; the `publishing` journal (or the next copy) finds it, hashes it and
//!   records it as `Adopted`;
//! - after the commit: nothing to do.
//!
//! Every folder on the way to a file is looked at without following links (a link or a
//! non-folder is refused, naming the path), temp files are created exclusively and never
//! through a link, a link at a file's own name is removed (logged with its target) before
//! the file is copied there, and a link is never hashed or adopted as if it were data. The
//! root itself is configuration and may be a link.
//!
//! A write the filesystem refuses as a whole (read-only, full, over quota, or a root we may
//! not write in) is `Refused` (`seam::Kind`): an outage, not one file's error.

#[cfg(not(target_os = "linux"))]
use super::fs::sync_file;
#[cfg(target_os = "linux")]
use super::fs::syncfs;
use super::fs::{
    create_exclusive, create_one_dir, hash_opened, hash_regular, mtime_ns, open_beneath,
    read_regular, refuse_unless_dir, remove_link, replace_durably,
};
use super::hashing::{self, Copying};
use super::layout::{self, file_name, is_temp_name};
use super::{
    refused_link, refuses_writes, stage_outcome, Bronze, EntryMeta, Found, ReadBack, StageOutcome,
    Staged,
};
use crate::identity::ContentHash;
use crate::seam::{Kind, Result, SeamError};
use crate::source::SourceMeta;
use crate::store::event::Replaced;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A Bronze layer in a folder.
#[derive(Debug, Clone)]
pub struct LocalBronze {
    root: PathBuf,
}

impl LocalBronze {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBronze { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a Bronze-relative path.
    pub fn path_of(&self, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
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

    /// `rel`'s absolute path, every folder on the way checked (see `checked_parent`).
    fn checked(&self, rel: &str, create: bool) -> io::Result<PathBuf> {
        Ok(self.checked_parent(rel, create)?.join(file_name(rel)))
    }

    /// What is at `rel` itself, not followed: `None` if missing, refused if a link.
    fn lstat(&self, rel: &str) -> io::Result<Option<fs::Metadata>> {
        let path = match self.checked(rel, false) {
            Ok(path) => path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => Err(refused_link(path)),
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One flush for the whole batch where the OS offers it (Linux `syncfs`), else per file.
    fn flush(&self, batch: &[Staged]) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            let _ = batch;
            syncfs(&self.root)
        }
        #[cfg(not(target_os = "linux"))]
        {
            batch
                .iter()
                .map(|s| sync_file(&self.path_of(&s.temp)))
                .collect()
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
            syncfs(&self.root)
        }
        #[cfg(all(unix, not(target_os = "linux")))]
        {
            let unique: std::collections::BTreeSet<PathBuf> = batch
                .iter()
                .filter_map(|s| self.path_of(&s.rel).parent().map(Path::to_owned))
                .collect();
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
                .filter_map(|s| s.replaces.map(|h| layout::kept_rel(&s.rel, h)));
            let moved: Vec<PathBuf> = batch
                .iter()
                .map(|s| s.rel.clone())
                .chain(kept)
                .map(|rel| self.path_of(&rel))
                .collect();
            moved
                .iter()
                .filter(|p| p.exists())
                .map(|p| sync_file(p))
                .collect()
        }
    }

    /// A write error told apart: the filesystem refusing writes as a whole (read-only, full,
    /// over quota) or a root we may not write in becomes `Refused`, an outage for the pass; anything else (one folder's permissions, a non-folder in the
    /// way of one file) stays that file's error.
    fn refusal(&self, e: io::Error) -> io::Error {
        let whole = match e.kind() {
            io::ErrorKind::PermissionDenied => self.root_refuses_writes(),
            kind => refuses_kind(kind),
        };
        if whole {
            refuses_writes(e)
        } else {
            e
        }
    }

    /// Whether the root itself refuses a new file: one byte written to a probe under a temp
    /// name (a crash's leftover is a stale temp to an audit), removed at once. Asked only after
    /// a write was denied, to tell Bronze's permissions from one folder's.
    fn root_refuses_writes(&self) -> bool {
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let n = PROBES.fetch_add(1, Ordering::Relaxed);
        let name = format!("write-probe-{}-{n}", std::process::id());
        let probe = self.root.join(layout::temp_rel(&name));
        let written = fs::create_dir_all(&self.root)
            .and_then(|()| create_exclusive(&probe))
            .and_then(|mut f| f.write_all(b"?"));
        let _ = fs::remove_file(&probe);
        written.is_err_and(|e| refuses_kind(e.kind()))
    }

    fn remove_staged(&self, s: &Staged) {
        if let Err(e) = fs::remove_file(self.path_of(&s.temp)) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(temp = %s.temp, error = %e, "cannot remove a temp file");
            }
        }
    }

    fn rename_into_place(&self, s: &Staged) -> io::Result<Option<Replaced>> {
        let dest = self.path_of(&s.rel);
        let replaced = match s.replaces {
            Some(hash) => {
                let kept_as = layout::kept_rel(&s.rel, hash);
                fs::rename(&dest, self.path_of(&kept_as))?;
                Some(Replaced { hash, kept_as })
            }
            None => None,
        };
        fs::rename(self.path_of(&s.temp), &dest)?;
        Ok(replaced)
    }

    fn walk_dir(&self, dir: &Path, prefix: &str, visit: &mut dyn FnMut(Found)) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // `DirEntry::file_type` does not follow links: a link to a folder is reported, not
            // walked into.
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                visit(Found { rel, link: true });
            } else if kind.is_dir() {
                self.walk_dir(&entry.path(), &rel, visit)?;
            } else {
                visit(Found { rel, link: false });
            }
        }
        Ok(())
    }
}

impl Bronze for LocalBronze {
    fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
        rel: &str,
    ) -> Result<StageOutcome> {
        let dest = self.checked(rel, true).map_err(|e| self.refusal(e))?;
        let existing = existing_hash(&dest).map_err(|e| self.refusal(e))?;
        let temp_rel = layout::temp_rel(rel);
        let temp = self.path_of(&temp_rel);
        let out = create_exclusive(&temp).map_err(|e| self.refusal(e))?;
        let (hash, copied) = copy_hashing(reader, out, &temp).map_err(|e| match e {
            Copying::Reading(e) => e,
            Copying::Writing(e) => self.refusal(e),
        })?;
        let after = match recheck() {
            Ok(after) => after,
            Err(e) => {
                // The source went away after the read (a dropped connection): no temp file
                // is left behind, and the file is fetched again next pass.
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        };
        let read = ReadBack {
            before,
            after,
            copied,
            hash,
        };
        let outcome = stage_outcome(rel, read, existing, || temp_rel);
        if !matches!(outcome, StageOutcome::Staged(_)) {
            fs::remove_file(&temp)?;
        }
        Ok(outcome)
    }

    fn open_staged(&self, staged: &Staged) -> Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.path_of(&staged.temp))?))
    }

    fn discard(&self, staged: Staged) -> Result<()> {
        Ok(fs::remove_file(self.path_of(&staged.temp))?)
    }

    fn publish(&self, batch: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>> {
        if let Err(e) = self.flush(batch) {
            // Nothing was published: drop the temp files (the files are staged again later).
            batch.iter().for_each(|s| self.remove_staged(s));
            let e = SeamError::from(self.refusal(e));
            if e.is_outage() {
                return Err(e);
            }
            return Ok(batch
                .iter()
                .map(|_| Err(io::Error::new(e.io().kind(), e.to_string()).into()))
                .collect());
        }
        let results: Vec<_> = batch
            .iter()
            .map(|s| {
                let renamed = self.rename_into_place(s);
                if renamed.is_err() {
                    self.remove_staged(s);
                }
                renamed.map_err(|e| self.refusal(e).into())
            })
            .collect();
        // Renamed but perhaps not durable: the journal settles the batch at the next pass.
        self.flush_dirs(batch)?;
        Ok(results)
    }

    fn stat(&self, rel: &str) -> Result<Option<EntryMeta>> {
        Ok(self.lstat(rel)?.map(|m| EntryMeta {
            size: m.len(),
            mtime_ns: mtime_ns(&m),
        }))
    }

    fn hash(&self, rel: &str) -> Result<ContentHash> {
        if let Some(file) = open_beneath(&self.root, rel) {
            return Ok(hash_opened(file, &self.path_of(rel))?);
        }
        Ok(hash_regular(&self.checked(rel, false)?)?)
    }

    fn walk(&self, under: &str, visit: &mut dyn FnMut(Found)) -> Result<()> {
        if under.is_empty() {
            return match fs::metadata(&self.root) {
                Ok(_) => Ok(self.walk_dir(&self.root, "", visit)?),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        match self.lstat(under).map_err(SeamError::from) {
            Ok(None) => Ok(()),
            Err(e) if e.kind() == Kind::Link => {
                visit(Found {
                    rel: under.to_owned(),
                    link: true,
                });
                Ok(())
            }
            Err(e) => Err(e),
            Ok(Some(m)) if m.is_dir() => Ok(self.walk_dir(&self.path_of(under), under, visit)?),
            Ok(Some(_)) => {
                visit(Found {
                    rel: under.to_owned(),
                    link: false,
                });
                Ok(())
            }
        }
    }

    /// Reads at most the first entry.
    fn is_empty(&self) -> Result<bool> {
        match fs::read_dir(&self.root) {
            Ok(mut entries) => Ok(entries.next().transpose()?.is_none()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    fn remove_temp(&self, rel: &str) -> Result<()> {
        if !is_temp_name(file_name(rel)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel} is not a temp file"),
            )
            .into());
        }
        Ok(fs::remove_file(self.checked(rel, false)?)?)
    }

    fn put_reserved(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        layout::check_reserved(rel)?;
        // Folders made for this file are flushed with it (the first shipping makes three).
        let missing = (rel.match_indices('/').map(|(i, _)| &rel[..i]))
            .filter(|dir| matches!(self.lstat(dir), Ok(None)))
            .count();
        let path = self.checked(rel, true).map_err(|e| self.refusal(e))?;
        Ok(replace_durably(&path, bytes, missing).map_err(|e| self.refusal(e))?)
    }

    fn get_reserved(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        layout::check_reserved(rel)?;
        match self.checked(rel, false) {
            Ok(path) => Ok(read_regular(&path, limit)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn remove_reserved(&self, rel: &str) -> Result<()> {
        layout::check_reserved(rel)?;
        let path = match self.checked(rel, false) {
            Ok(path) => path,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                Ok(remove_link(&path, m.file_type(), "a reserved file's name")?)
            }
            Ok(_) => Ok(fs::remove_file(&path)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn locate(&self, rel: &str) -> String {
        self.path_of(rel).display().to_string()
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Hash of a regular file already at `dest`, `None` if nothing is there. A link there was
/// planted (a file's final name is ours): it is removed, never hashed or followed (its target
/// is not ours), so the file lands in its place.
fn existing_hash(dest: &Path) -> io::Result<Option<ContentHash>> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.file_type().is_symlink() => {
            remove_link(dest, m.file_type(), "a file's final name")?;
            Ok(None)
        }
        Ok(m) if m.is_file() => Ok(Some(hash_regular(dest)?)),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a regular file", dest.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an error kind is a filesystem refusing a write (see `LocalBronze::refusal`).
fn refuses_kind(kind: io::ErrorKind) -> bool {
    use io::ErrorKind as K;
    matches!(
        kind,
        K::ReadOnlyFilesystem | K::StorageFull | K::QuotaExceeded | K::PermissionDenied
    )
}

/// Copies `reader` into `out` (the file at `temp`) while hashing; on any error the temp file
/// is removed.
fn copy_hashing(
    reader: &mut dyn Read,
    mut out: File,
    temp: &Path,
) -> Result<(ContentHash, u64), Copying> {
    let copied = hashing::copy_hashing(reader, &mut out);
    if copied.is_err() {
        let _ = fs::remove_file(temp);
    }
    copied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::EntryKind;

    fn meta(bytes: &[u8]) -> SourceMeta {
        SourceMeta {
            kind: EntryKind::File,
            size: bytes.len() as u64,
            mtime_ns: 1_692_000_000_000_000_000,
        }
    }

    fn stage(bronze: &LocalBronze, rel: &str, bytes: &[u8]) -> Staged {
        let m = meta(bytes);
        match bronze
            .stage(&mut &bytes[..], m, &mut || Ok(Some(m)), rel)
            .unwrap()
        {
            StageOutcome::Staged(s) => s,
            other => panic!("{rel} not staged: {other:?}"),
        }
    }

    /// Hashing a Bronze file never follows a link: one at the file's name or at a folder on
    /// the way is refused as a link, whichever way the file is opened (in one call on Linux,
    /// `open_beneath`, else folder by folder), and nothing outside Bronze is read through
    /// `..`; Bronze's root itself may be a link (it is configuration). A plain file hashes
    /// as its bytes.
    #[cfg(unix)]
    #[test]
    fn hashing_refuses_a_link_at_the_name_or_on_the_way() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real-root")).unwrap();
        symlink(dir.path().join("real-root"), dir.path().join("bronze")).unwrap();
        let bronze = LocalBronze::new(dir.path().join("bronze"));
        let rel = "a/2023/08/18/10/one.json";
        let results = bronze.publish(&[stage(&bronze, rel, b"one")]).unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let one = ContentHash::of_reader(&mut &b"one"[..]).unwrap();
        assert_eq!(bronze.hash(rel).unwrap(), one);
        #[cfg(target_os = "linux")]
        assert!(
            open_beneath(&bronze.root, rel).is_some(),
            "the one-call path"
        );

        let outside = dir.path().join("outside/2023/08/18/10");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("one.json"), b"secret").unwrap();
        symlink(dir.path().join("outside"), bronze.path_of("b")).unwrap();
        symlink(
            outside.join("one.json"),
            bronze.path_of("a/2023/08/18/10/two.json"),
        )
        .unwrap();
        for rel in ["b/2023/08/18/10/one.json", "a/2023/08/18/10/two.json"] {
            let e = bronze.hash(rel).unwrap_err();
            assert_eq!(e.kind(), Kind::Link, "{rel}: {e}");
            assert!(open_beneath(&bronze.root, rel).is_none(), "{rel}");
        }
        assert!(open_beneath(&bronze.root, "../outside/2023/08/18/10/one.json").is_none());
    }

    /// Publishing flushes, renames and flushes again on every platform: both files of a batch
    /// become visible with their bytes, no temp file is left, and different bytes already at a
    /// destination are kept aside. (On Windows this once failed every file with "Access
    /// denied": the flush opened files read-only.)
    #[test]
    fn publish_makes_a_batch_visible_and_keeps_older_bytes_aside() {
        let dir = tempfile::tempdir().unwrap();
        let bronze = LocalBronze::new(dir.path().join("bronze"));
        let first = stage(&bronze, "a/2023/08/18/10/one.json", b"one");
        let results = bronze.publish(&[first]).unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let batch = [
            stage(&bronze, "a/2023/08/18/10/one.json", b"one, rewritten"),
            stage(&bronze, "a/2023/08/18/11/two.json", b"two"),
        ];
        let results = bronze.publish(&batch).unwrap();
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
            .filter(|e| is_temp_name(&e.as_ref().unwrap().file_name().to_string_lossy()))
            .count();
        assert_eq!(temps, 0);
    }
}
