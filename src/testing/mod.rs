//! Test doubles for fast unit tests of the core: a clock that moves only when told to, one
//! that follows tokio's paused time, an in-memory share, and [`fault`] injection around the
//! Source and Bronze seams with the model tests that use it, [`golden`] files of what
//! commands print, and the [`contract`] suites every Source and Bronze must pass.
//! Compiled for tests only: none of this is in the release binary.

pub mod contract;
mod contract_tests;
pub mod fault;
pub mod fault_object;
pub mod golden;

/// The library as [`contract`] names it (the integration tests name `ingest` so).
use crate as lib;

use crate::clock::{Clock, Zone};
use crate::source::{EntryKind, Listed, Opened, Source, SourceMeta};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::Mutex;

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    zone: Zone,
}

impl ManualClock {
    pub fn new(now_utc: DateTime<Utc>, zone: Zone) -> Self {
        ManualClock {
            now: Mutex::new(now_utc),
            zone,
        }
    }

    /// A clock whose local time is `local`, in UTC.
    pub fn at_local(local: NaiveDateTime) -> Self {
        Self::new(local.and_utc(), Zone::Named(chrono_tz::UTC))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn zone(&self) -> Zone {
        self.zone
    }
}

/// Wall time that follows tokio's clock from a fixed start, so a daemon under
/// `tokio::time::pause()` lives through days of schedule in milliseconds.
///
/// Paused time exists only on the runtime's threads; a copy worker thread gets the last time
/// read on the runtime (a pass starts there, so that is the pass's "now").
#[derive(Debug)]
pub struct TokioClock {
    start_utc: DateTime<Utc>,
    start: tokio::time::Instant,
    zone: Zone,
    last: Mutex<DateTime<Utc>>,
}

impl TokioClock {
    pub fn new(start_utc: DateTime<Utc>, zone: Zone) -> Self {
        let start = tokio::time::Instant::now();
        TokioClock {
            start_utc,
            start,
            zone,
            last: Mutex::new(start_utc),
        }
    }
}

impl Clock for TokioClock {
    fn now_utc(&self) -> DateTime<Utc> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if tokio::runtime::Handle::try_current().is_ok() {
            let elapsed = tokio::time::Instant::now() - self.start;
            *last = self.start_utc + chrono::Duration::from_std(elapsed).unwrap_or_default();
        }
        *last
    }
    fn zone(&self) -> Zone {
        self.zone
    }
}

/// An in-memory share for fast unit tests of the core: names map to bytes and an mtime.
#[derive(Debug, Default)]
pub struct MemorySource {
    files: std::sync::Mutex<std::collections::BTreeMap<OsString, (Vec<u8>, i64)>>,
}

impl MemorySource {
    pub fn put(&self, name: &str, bytes: &[u8], mtime_ns: i64) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.insert(name.into(), (bytes.to_vec(), mtime_ns));
    }

    pub fn remove(&self, name: &str) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.remove(OsStr::new(name));
    }

    fn get(&self, name: &OsStr) -> Option<(Vec<u8>, i64)> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

impl Source for MemorySource {
    fn stat(&self, name: &OsStr) -> crate::seam::Result<Option<SourceMeta>> {
        Ok(self.get(name).map(|(b, mtime_ns)| SourceMeta {
            kind: EntryKind::File,
            size: b.len() as u64,
            mtime_ns,
        }))
    }

    fn list(&self) -> crate::seam::Result<Vec<Listed>> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        Ok(files
            .iter()
            .map(|(name, (bytes, mtime_ns))| Listed {
                name: name.clone(),
                kind: EntryKind::File,
                meta: Some(SourceMeta {
                    kind: EntryKind::File,
                    size: bytes.len() as u64,
                    mtime_ns: *mtime_ns,
                }),
            })
            .collect())
    }

    fn open(&self, name: &OsStr) -> crate::seam::Result<Opened> {
        let (bytes, mtime_ns) = self
            .get(name)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        let meta = SourceMeta {
            kind: EntryKind::File,
            size: bytes.len() as u64,
            mtime_ns,
        };
        Ok(Opened::new(Box::new(io::Cursor::new(bytes)), meta))
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    fn peek_empty(&self) -> Option<crate::seam::Result<bool>> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        Some(Ok(files.is_empty()))
    }
}

/// Every file below `root` (recursively, links as files), for checks of what is on disk.
pub fn files_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
