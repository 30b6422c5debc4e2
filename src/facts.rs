//! What is known about one file version, in words every layer shares: the size and mtime a
//! source reported ([`SourceVersion`]), why a copy waits ([`DeferReason`]) and what a copy
//! displaced in Bronze ([`Replaced`]). They live below the store, the sources and Bronze so
//! that none of those has to import another to name them. They are encoded in the event log
//! (`store::event`): changing one changes the on-disk format (see `schema/`).

use crate::identity::ContentHash;
use serde::{Deserialize, Serialize};

/// Size and modification time of a source file when it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceVersion {
    pub size: u64,
    /// Nanoseconds since the Unix epoch (UTC), as the source reports it.
    pub mtime_ns: i64,
}

/// The previous Bronze file displaced by a copy: never deleted, renamed aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub hash: ContentHash,
    /// Where the previous bytes now live, relative to the Bronze root.
    pub kept_as: String,
}

/// Why a file seen on the source is not copied yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeferReason {
    /// Modified less than the minimum age ago.
    TooYoung,
    /// Size or mtime changed while it was read.
    ChangedWhileReading,
    // Variants are encoded by index: only ever append below this line.
    /// Read whole and stable, but not yet a complete JSON document: a writer that paused
    /// longer than the minimum age. Retried until `Settings::incomplete_grace` has passed
    /// since its mtime, then recorded as `Failed`.
    Incomplete,
}
