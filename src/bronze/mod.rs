//! Bronze: where copies land. The [`Bronze`] trait is the one boundary every Bronze read and
//! write goes through (stage and publish with hashing; stat, hash and walk what is there;
//! remove our own temp files), so a copy, an audit, an adoption or a replay never touches a
//! Bronze path itself. [`layout`] owns every path rule; [`LocalBronze`] is the filesystem
//! implementation, [`ObjectBronze`] the object store one ([`s3`] opens it for an `s3://` root).
//!
//! The contract every implementation keeps (what lets the log never claim a copy that is not
//! there): a copy is staged first (streamed once from the source, hashed on the way, invisible
//! under its final name), then a batch is published (made durable, moved under the final
//! names). Only after `publish` returns may the caller commit `Copied` events. Different bytes
//! at a destination are kept aside ([`layout::kept_rel`]), never overwritten. Nothing below
//! the root is trusted to be what it seems: a link on the way to a file is refused
//! (a [`Kind::Link`] error); a link at a file's own name is removed (the link, never its
//! target) when the file is copied there; no link is ever followed, hashed or adopted. An
//! error of the layer as a whole ([`Kind::Unreachable`], [`Kind::Refused`]) is an outage,
//! not a file's. Bronze never says `Lost`: that is a source's, so a copy knows whose outage.

mod fs;
mod hashing;
mod latch;
pub mod layout;
mod local;
pub mod object;
pub mod s3;

pub use fs::{create_exclusive, temp_path};
pub use latch::OutageLatch;
pub use local::LocalBronze;
pub use object::ObjectBronze;

use crate::config::StreamMap;
use crate::identity::{ContentHash, FileKey};
use crate::seam::{Kind, Result, SeamError};
use crate::source::{EntryKind, SourceMeta};
use crate::store::event::{DeferReason, EventKind, Replaced, SourceVersion};
use layout::Entry;
use std::io::{self, Read};
use std::path::Path;

/// A Bronze layer: the only way into the files copies land in.
pub trait Bronze: Send + Sync {
    /// Streams an opened source file into a staged copy for `rel`, hashing on the way.
    /// `before` is the file's metadata from the open handle; `recheck` looks it up again after
    /// the read, so a file that changed meanwhile is deferred instead of copied half-done.
    /// `rel` must come from [`layout`] (it is trusted to hold no `..` or absolute parts).
    /// A link at `rel` itself was planted (Bronze's names are ours): it is removed, never
    /// followed, and the file is staged as if nothing were there. An error of the layer as
    /// a whole is `Refused` or `Unreachable` ([`SeamError::is_outage`]); a read that failed
    /// because the source went away is the source's `Lost`.
    fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
        rel: &str,
    ) -> Result<StageOutcome>;

    /// The staged bytes, for checks that need the whole file before it is published (the
    /// sensor flow's JSON completeness check).
    fn open_staged(&self, staged: &Staged) -> Result<Box<dyn Read + Send>>;

    /// Drops a staged copy without publishing it.
    fn discard(&self, staged: Staged) -> Result<()>;

    /// Makes a batch durable and visible. `Ok` holds, per staged file in order, what it
    /// replaced or the error that kept it from being published (that file is then not
    /// copied). `Err` means the batch's outcome is unknown (moved into place, but perhaps not
    /// durable): the caller records nothing and stops; the `publishing` journal settles the
    /// batch at the next pass.
    fn publish(&self, batch: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>>;

    /// What is at `rel`, looked at without following any link: `None` if it (or a folder on
    /// the way) is missing, a `Link` error if a link is on the way or at `rel`.
    fn stat(&self, rel: &str) -> Result<Option<EntryMeta>>;

    /// blake3 of the file at `rel`, never through a link (`NotFound` if missing).
    fn hash(&self, rel: &str) -> Result<ContentHash>;

    /// The blake3 that `ingest` stored beside the object at `rel` when it wrote it (object
    /// metadata), with the object's size and mtime, read without its bytes; `None` where
    /// Bronze keeps no such record (a folder) or the object carries none. A claim, not proof:
    /// it only settles this store's own interrupted batches cheaply; `audit` hashes bytes.
    /// May be `NotFound` when nothing is at `rel`.
    fn stored_hash(&self, rel: &str) -> Result<Option<(ContentHash, EntryMeta)>> {
        let _ = rel;
        Ok(None)
    }

    /// Calls `visit` for every file at or below `under` (a Bronze folder path; empty for the
    /// whole layer), links reported as links and never walked into. A missing `under` visits
    /// nothing.
    fn walk(&self, under: &str, visit: &mut dyn FnMut(Found)) -> Result<()>;

    /// Whether the layer holds nothing at all (a first run over it then adopts nothing).
    fn is_empty(&self) -> Result<bool>;

    /// Removes one of our temp files (`rel` must name one), never through a link.
    fn remove_temp(&self, rel: &str) -> Result<()>;

    /// Writes `bytes` at `rel` below [`layout::RESERVED`], replacing what is there: all or
    /// nothing, durable when it returns, never through a link. For ingest's own files in
    /// Bronze (the shipped log, `shipping`), which are not data and follow none of its rules.
    fn put_reserved(&self, rel: &str, bytes: &[u8]) -> Result<()>;

    /// The bytes at `rel` below [`layout::RESERVED`]; `None` when nothing is there. A file
    /// larger than `limit` bytes is refused (`InvalidData`) before it is read: nothing in
    /// Bronze is trusted, so a planted file cannot exhaust memory.
    fn get_reserved(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>>;

    /// Removes `rel` below [`layout::RESERVED`] (the file, or a link there, never its target);
    /// nothing there is fine.
    fn remove_reserved(&self, rel: &str) -> Result<()>;

    /// Where a Bronze file can be read by others (the hook's manifest): a path or a URL.
    fn locate(&self, rel: &str) -> String;

    /// The layer's root, for messages and the hook's `INGEST_BRONZE_ROOT`.
    fn describe(&self) -> String;
}

/// A source file copied into a staged copy, hashed, not yet durable or visible.
#[derive(Debug, Clone)]
pub struct Staged {
    /// Destination relative to the Bronze root, `/`-separated.
    pub rel: String,
    pub facts: SourceVersion,
    pub hash: ContentHash,
    /// Where the staged bytes are, in the implementation's terms (a temp file's Bronze path).
    pub(crate) temp: String,
    /// Hash of different bytes already at the destination; they are kept aside on publish.
    pub(crate) replaces: Option<ContentHash>,
}

/// What staging one file produced.
#[derive(Debug)]
pub enum StageOutcome {
    /// Ready to publish.
    Staged(Staged),
    /// The destination already holds exactly these bytes; nothing to publish.
    AlreadyThere {
        rel: String,
        facts: SourceVersion,
        hash: ContentHash,
    },
    /// The file is still being written; try again later.
    Deferred {
        facts: SourceVersion,
        reason: DeferReason,
    },
}

/// What becomes of one file after staging: its staged copy is published, or an event
/// settles it without publishing, or (Bronze being down) nothing at all.
#[derive(Debug)]
pub enum Verdict {
    Publish(Staged),
    Record(EventKind),
    /// Not copied because Bronze as a whole is down ([`is_outage`]): an outage, not this
    /// file's failure, so nothing is recorded and a later pass finds the file again.
    Left,
}

impl StageOutcome {
    /// The staged copy to publish, or the event that settles the file without publishing
    /// (identical bytes already there, or deferred).
    pub fn verdict(self, file: FileKey) -> Verdict {
        match self {
            StageOutcome::Staged(s) => Verdict::Publish(s),
            StageOutcome::AlreadyThere { rel, facts, hash } => {
                Verdict::Record(EventKind::Adopted {
                    file,
                    facts,
                    hash,
                    bronze: rel,
                })
            }
            StageOutcome::Deferred { facts, reason } => Verdict::Record(EventKind::Discovered {
                file,
                facts,
                reason,
            }),
        }
    }
}

/// One source file read to its end while staging: its metadata when opened (`before`) and
/// looked up again after the read (`after`), the bytes read and their hash.
pub(crate) struct ReadBack {
    pub before: SourceMeta,
    pub after: Option<SourceMeta>,
    pub copied: u64,
    pub hash: ContentHash,
}

/// What staging `rel` comes to, the same for every layer: deferred if the file changed while
/// it was read, nothing to publish if the destination holds these bytes already (`existing`),
/// else a staged copy whose place `keep` names (called only then: the caller drops its staged
/// bytes in the other cases).
pub(crate) fn stage_outcome(
    rel: &str,
    read: ReadBack,
    existing: Option<ContentHash>,
    keep: impl FnOnce() -> String,
) -> StageOutcome {
    let ReadBack {
        before,
        after,
        copied,
        hash,
    } = read;
    if !unchanged(&before, after.as_ref(), copied) {
        let facts = after.map_or(before.facts(), |m| m.facts());
        return StageOutcome::Deferred {
            facts,
            reason: DeferReason::ChangedWhileReading,
        };
    }
    let (rel, facts) = (rel.to_owned(), before.facts());
    match existing {
        Some(there) if there == hash => StageOutcome::AlreadyThere { rel, facts, hash },
        replaces => StageOutcome::Staged(Staged {
            rel,
            facts,
            hash,
            temp: keep(),
            replaces,
        }),
    }
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

/// What [`Bronze::stat`] tells about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (UTC); 0 when unknown.
    pub mtime_ns: i64,
}

/// One file met by [`Bronze::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its Bronze path, `/`-separated.
    pub rel: String,
    /// A symbolic link (or Windows junction), never followed.
    pub link: bool,
}

/// Walks `under` and tells each file's place in the layout (data, temp, kept, stray, link).
/// Ingest's own files ([`layout::RESERVED`]) are not data and never visited.
pub fn inventory(
    bronze: &dyn Bronze,
    under: &str,
    streams: &StreamMap,
    visit: &mut dyn FnMut(Entry),
) -> Result<()> {
    bronze.walk(under, &mut |found| {
        if layout::is_reserved(&found.rel) {
            return;
        }
        visit(if found.link {
            Entry::Link { rel: found.rel }
        } else {
            layout::classify(&found.rel, streams)
        })
    })
}

/// A symbolic link (or Windows junction) found where Bronze expects its own file or folder,
/// as the `io::Error` the filesystem helpers return (the trait's `SeamError::from` gets the
/// `Link` kind back).
pub(crate) fn refused_link(path: impl AsRef<Path>) -> io::Error {
    let why = format!(
        "{} is a symbolic link; Bronze never follows links below its root",
        path.as_ref().display()
    );
    SeamError::msg(Kind::Link, why).into()
}

/// Bronze as a whole cannot be reached (an object store that is down or refuses us), as
/// opposed to one file's problem: a copy that meets it ends the pass as an outage instead of
/// failing file after file, and an audit stops instead of calling every file corrupt.
pub(crate) fn unreachable(why: impl Into<String>) -> io::Error {
    SeamError::msg(Kind::Unreachable, why).into()
}

/// Bronze as a whole refuses writes: its filesystem is read-only, full or over quota, or its
/// root is not ours to write in. Like [`unreachable`], an outage of the whole layer: every
/// other file of the pass would meet the same refusal. Keeps the OS error that said so.
pub(crate) fn refuses_writes(cause: io::Error) -> io::Error {
    SeamError::new(Kind::Refused, cause).into()
}

/// The pass-ending error for an outage of `bronze` as a whole (an object store that is down, a
/// filesystem that refuses writes), `why`.
pub fn outage(bronze: &dyn Bronze, why: SeamError) -> crate::Error {
    match why.kind() {
        Kind::Refused => crate::Error::BronzeRefusesWrites {
            root: bronze.describe(),
            source: why.into_io(),
        },
        _ => crate::Error::ShareUnreachable {
            path: format!("Bronze {}", bronze.describe()),
            source: why.into_io(),
        },
    }
}
