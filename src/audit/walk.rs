//! The audit's walk of Bronze: what Bronze holds that the index does not know (unknown files,
//! links) and our own temp files, sorted by age. Walked entries are looked up in the index
//! [`WALK_CHUNK`] at a time, so memory does not grow with Bronze (it held the set of every
//! known path before).

use super::{AuditOptions, Auditor, Problem, StaleTemp, STALE_TEMP_AGE};
use crate::bronze::inventory;
use crate::bronze::layout::{stream_dir, Entry};
use crate::error::{Error, Result};
use crate::identity::{FileKey, SourceId};
use crate::store::event::Finding;
use crate::store::Store;

/// Entries found by walking Bronze that are looked up in the index at once.
const WALK_CHUNK: usize = 16_384;

/// What walking Bronze found besides the indexed files.
#[derive(Default)]
pub(super) struct Walked {
    pub unknown: Vec<Problem>,
    pub links: Vec<Problem>,
    pub stale_temps: Vec<StaleTemp>,
    pub temps_in_flight: u64,
}

impl Auditor<'_> {
    /// Walks Bronze (within the audited stream) for what the index does not know: unknown
    /// files, links, and our temp files (sorted by age, never findings). What it finds is
    /// looked up in the index [`WALK_CHUNK`] entries at a time.
    pub(super) fn walk_bronze(&self, opts: &AuditOptions) -> Result<Walked> {
        let mut walked = Walked::default();
        let under = opts
            .stream
            .as_deref()
            .map_or("", |s| stream_dir(s, self.streams));
        let now = self.clock.now_utc();
        let mut found = Vec::new();
        let mut failed = None;
        let mut on_entry = |entry: Entry| {
            // After a failed lookup the walk only runs out (`inventory` cannot be stopped).
            if failed.is_some() {
                return;
            }
            match entry {
                Entry::KeptAside { .. } => {}
                Entry::Temp { rel } => self.note_temp(rel, now, &mut walked),
                entry => found.push(entry),
            }
            if found.len() >= WALK_CHUNK {
                failed = self.sort_found(&mut found, &mut walked).err();
            }
        };
        inventory(self.bronze, under, self.streams, &mut on_entry).map_err(|e| {
            let at = self.bronze.locate(under);
            Error::io(format!("walking {at} in Bronze"), e)
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.sort_found(&mut found, &mut walked)?;
        Ok(walked)
    }

    /// Looks up walked entries in the index and keeps the unknown files and links as
    /// findings (a link at an indexed file's path is reported by that file's check).
    fn sort_found(&self, found: &mut Vec<Entry>, walked: &mut Walked) -> Result<()> {
        if found.is_empty() {
            return Ok(());
        }
        let store = self.open_to_read()?;
        let sources = store.sources()?;
        for entry in found.drain(..) {
            let rel = entry.rel().to_owned();
            let (kind, candidates) = match entry {
                Entry::Data { key, .. } => (Finding::UnknownInBronze, vec![key]),
                Entry::Link { .. } => (Finding::LinkInBronze, keys_named_by(&rel, &sources)),
                _ => (Finding::UnknownInBronze, keys_named_by(&rel, &sources)),
            };
            if is_known(&store, &candidates, &rel)? {
                continue;
            }
            let problem = found_at(rel, kind);
            match kind {
                Finding::LinkInBronze => walked.links.push(problem),
                _ => walked.unknown.push(problem),
            }
        }
        Ok(())
    }

    /// Sorts a temp file of ours by age: stale (a crash's leftover) or a copy in flight.
    fn note_temp(&self, rel: String, now: chrono::DateTime<chrono::Utc>, walked: &mut Walked) {
        let modified = match self.bronze.stat(&rel) {
            Ok(Some(m)) => chrono::DateTime::from_timestamp_nanos(m.mtime_ns),
            _ => return, // Renamed into place meanwhile: the copy finished.
        };
        let age = (now - modified).to_std().unwrap_or_default();
        if age >= STALE_TEMP_AGE {
            walked.stale_temps.push(StaleTemp {
                bronze: rel,
                removed: false,
            });
        } else {
            walked.temps_in_flight += 1;
        }
    }

    /// `--repair`: removes stale temp files (never through a link).
    pub(super) fn remove_stale_temps(&self, stale: &mut [StaleTemp]) {
        for t in stale {
            match self.bronze.remove_temp(&t.bronze) {
                Ok(()) => t.removed = true,
                Err(e) => {
                    tracing::warn!(temp = %t.bronze, error = %e, "cannot remove a stale temp file")
                }
            }
        }
    }

    /// One event per problem and one summary, in one transaction.
    /// A daemon may have copied files while this audit ran: they are in Bronze but not in the
    /// index read at the start. Looked up again, they are not reported as unknown.
    pub(super) fn still_unknown(&self, unknown: Vec<Problem>) -> Result<Vec<Problem>> {
        if unknown.is_empty() {
            return Ok(unknown);
        }
        let store = Store::open_existing(self.store_path, self.store_wait)?;
        let sources = store.sources()?;
        let mut left = Vec::new();
        for p in unknown {
            if !is_known(&store, &keys_named_by(&p.bronze, &sources), &p.bronze)? {
                left.push(p);
            }
        }
        Ok(left)
    }
}

/// Whether the index records one of `keys` as ingested at `rel`.
fn is_known(store: &Store, keys: &[FileKey], rel: &str) -> Result<bool> {
    for key in keys {
        let record = store.file(key)?;
        if record.is_some_and(|r| r.state.is_ingested() && r.bronze.as_deref() == Some(rel)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The files a Bronze path's last part may name: a file of any of the store's `sources` (a
/// sensor file, a forecast, a declared feed's file).
fn keys_named_by(rel: &str, sources: &[SourceId]) -> Vec<FileKey> {
    let name = rel.rsplit('/').next().unwrap_or(rel).as_bytes();
    (sources.iter())
        .map(|&source| FileKey {
            source,
            name: name.to_vec(),
        })
        .collect()
}

/// A problem found by walking Bronze (no record behind it).
fn found_at(rel: String, kind: Finding) -> Problem {
    let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
    Problem {
        key: FileKey::share(name.clone().into_bytes()),
        file: name,
        finding: kind.code(),
        bronze: rel,
        recorded_hash: None,
        bronze_hash: None,
        source_hash: None,
        repaired: false,
        kind,
    }
}
