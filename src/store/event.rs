//! The events of the log. Every file that is seen, copied, skipped or fails becomes one of
//! these; the projections are folds over them. Changing a type here changes the on-disk format:
//! add a new envelope version in `codec` and keep decoding the old one (see `schema/`).

use super::feeds::FeedDeclaration;
use crate::identity::{ContentHash, FileKey, SourceId};
use serde::{Deserialize, Serialize};

// The words the log shares with every layer (what a source said, why a copy waits, what it
// displaced) live in `crate::facts`; they are part of the on-disk format all the same.
pub use crate::facts::{DeferReason, Replaced, SourceVersion};

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time of the event, milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Seen on the source but not copied yet, because it may still be being written.
    Discovered {
        file: FileKey,
        facts: SourceVersion,
        reason: DeferReason,
    },
    /// Copied into Bronze; the file at `bronze` is durable and has `hash`.
    Copied {
        file: FileKey,
        facts: SourceVersion,
        hash: ContentHash,
        /// Path relative to the Bronze root, `/`-separated.
        bronze: String,
        /// A different file that was at `bronze` before, and where it was kept.
        replaced: Option<Replaced>,
    },
    /// Bronze already held exactly these bytes (e.g. after a crash between rename and commit).
    Adopted {
        file: FileKey,
        facts: SourceVersion,
        hash: ContentHash,
        bronze: String,
    },
    /// Never copied, on purpose; `reason` says why.
    Skipped {
        file: FileKey,
        facts: Option<SourceVersion>,
        reason: SkipReason,
    },
    /// Copy attempted and failed; retried on later passes.
    Failed {
        file: FileKey,
        facts: Option<SourceVersion>,
        error: String,
    },
    /// A pass over the whole source finished.
    ScanCompleted(ScanSummary),
    // Variants are encoded by index: only ever append below this line.
    /// `ingest audit` found a problem with one file.
    AuditFinding {
        file: FileKey,
        finding: Finding,
        /// Bronze path concerned, relative to the Bronze root.
        bronze: String,
        /// Hash of what was found in Bronze / on the source, when it could be read.
        bronze_hash: Option<ContentHash>,
        source_hash: Option<ContentHash>,
    },
    /// An audit finished.
    AuditCompleted(AuditSummary),
    /// The downstream hook was run over the files copied in events `from_seq..=to_seq`.
    HookRun(HookSummary),
    /// A whole source could not be read this pass (unreachable, refused host key, failed
    /// login). Per-file problems are `Failed`; this is the flow's own error, never a secret.
    SourceFailed { source: SourceId, error: String },
    /// A feed of the config file was first seen by this store and given its id; the store
    /// reads the feed's names with this pattern from here on (`store::feeds`).
    FeedDeclared(FeedDeclaration),
}

/// One run of the downstream hook (`--on-new`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSummary {
    pub from_seq: u64,
    pub to_seq: u64,
    /// Bronze files handed over.
    pub files: u64,
    /// Exit 0 within the timeout. Only then does the cursor move past `to_seq`.
    pub ok: bool,
    /// Why it failed (exit status, timeout, interrupted).
    pub error: Option<String>,
    pub millis: u64,
}

/// What an audit can find wrong with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Finding {
    /// Recorded as ingested, but no file at its Bronze path.
    MissingInBronze,
    /// The Bronze file's hash differs from the recorded one.
    BronzeCorrupt,
    /// The source file's hash differs from the recorded one.
    SourceChanged,
    /// Recorded as ingested, but gone from the source.
    MissingOnSource,
    /// A file in Bronze that the index does not know.
    UnknownInBronze,
    // Encoded by index: only ever append below this line.
    /// A symbolic link (or junction) in Bronze, at a file's name or on the way to it: never
    /// followed or hashed. Counted in the audit report, not in `AuditSummary` (whose v1
    /// layout has no field for it).
    LinkInBronze,
}

impl Finding {
    pub const ALL: [Finding; 6] = [
        Finding::MissingInBronze,
        Finding::BronzeCorrupt,
        Finding::SourceChanged,
        Finding::MissingOnSource,
        Finding::UnknownInBronze,
        Finding::LinkInBronze,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Finding::MissingInBronze => "missing-in-bronze",
            Finding::BronzeCorrupt => "bronze-corrupt",
            Finding::SourceChanged => "source-changed",
            Finding::MissingOnSource => "missing-on-source",
            Finding::UnknownInBronze => "unknown-in-bronze",
            Finding::LinkInBronze => "link-in-bronze",
        }
    }
}

/// What an audit checked and found, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSummary {
    pub checked: u64,
    pub ok: u64,
    pub missing_in_bronze: u64,
    pub bronze_corrupt: u64,
    pub source_changed: u64,
    pub missing_on_source: u64,
    pub unknown_in_bronze: u64,
    pub repaired: u64,
    pub source_checked: bool,
    pub projections_ok: bool,
    pub millis: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkipReason {
    /// The name does not follow the grammar; `code` is `NameError::code`.
    BadName { code: String },
    /// A well-formed sensor name for an apartment that is not configured.
    UnknownStream { apartment: String },
    /// A directory, symlink or special file carrying a file name.
    NotRegularFile,
    /// Zero bytes long; retried, since it may still be filled.
    Empty,
    /// Seen once, gone from the source before it could be copied (and the source as a whole
    /// was there: an empty or unreachable share is an outage, never this).
    Vanished,
    // Variants are encoded by index: only ever append below this line.
    /// Named more than `Settings::future_tolerance` after the wall clock: not copied (it would
    /// move the stream's baseline into the future), retried once the wall clock reaches it.
    InFuture,
}

impl SkipReason {
    /// Short stable code for counts and messages.
    pub fn code(&self) -> String {
        match self {
            SkipReason::BadName { code } => format!("bad-name:{code}"),
            SkipReason::UnknownStream { .. } => "unknown-stream".into(),
            SkipReason::NotRegularFile => "not-regular-file".into(),
            SkipReason::Empty => "empty".into(),
            SkipReason::Vanished => "vanished".into(),
            SkipReason::InFuture => "in-future".into(),
        }
    }
}

/// Which kind of pass produced a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PassMode {
    Prediction,
    Reconcile,
    /// `ingest replay`: every expected minute of a window.
    Replay,
    /// `ingest adopt`: an existing Bronze tree recorded into the index.
    Adopt,
    /// One listing of the weather sFTP directory.
    Weather,
    // Encoded by index: only ever append below this line.
    /// One listing of a declared feed's source (`listing`).
    Listing,
}

impl PassMode {
    pub fn name(self) -> &'static str {
        match self {
            PassMode::Prediction => "prediction",
            PassMode::Reconcile => "reconcile",
            PassMode::Replay => "replay",
            PassMode::Adopt => "adopt",
            PassMode::Weather => "weather",
            PassMode::Listing => "listing",
        }
    }
}

/// What a pass did, counted.
///
/// Its six counts (`copied` to `bytes`) repeat `Tally`'s (record.rs) on purpose, and `Tally`'s
/// `summary` is the one place one becomes the other. This struct is in the on-disk log, encoded
/// by bincode in field order (schema/), and `log --json` prints its fields flat: a nested
/// `Tally` would keep the bincode bytes but rename the JSON keys, and `serde(flatten)` would
/// change the bincode bytes. `Tally` also carries per-stream counts the log does not keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub mode: Option<PassMode>,
    /// Entries in the listing (reconcile) or 0.
    pub listed: u64,
    pub lookups: u64,
    pub listings: u64,
    pub copied: u64,
    pub adopted: u64,
    pub skipped: u64,
    pub failed: u64,
    pub deferred: u64,
    pub bytes: u64,
    pub millis: u64,
}

impl EventKind {
    /// Stable lower-case name, used for counts in `meta` and in `log` output.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Discovered { .. } => "discovered",
            EventKind::Copied { .. } => "copied",
            EventKind::Adopted { .. } => "adopted",
            EventKind::Skipped { .. } => "skipped",
            EventKind::Failed { .. } => "failed",
            EventKind::ScanCompleted(_) => "scan-completed",
            EventKind::AuditFinding { .. } => "audit-finding",
            EventKind::AuditCompleted(_) => "audit-completed",
            EventKind::HookRun(_) => "hook-run",
            EventKind::SourceFailed { .. } => "source-failed",
            EventKind::FeedDeclared(_) => "feed-declared",
        }
    }

    /// The file this event is about, if any.
    pub fn file(&self) -> Option<&FileKey> {
        match self {
            EventKind::Discovered { file, .. }
            | EventKind::Copied { file, .. }
            | EventKind::Adopted { file, .. }
            | EventKind::Skipped { file, .. }
            | EventKind::Failed { file, .. }
            | EventKind::AuditFinding { file, .. } => Some(file),
            EventKind::ScanCompleted(_)
            | EventKind::AuditCompleted(_)
            | EventKind::HookRun(_)
            | EventKind::SourceFailed { .. }
            | EventKind::FeedDeclared(_) => None,
        }
    }
}
