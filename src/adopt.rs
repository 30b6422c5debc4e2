//! Adopting an existing Bronze tree (e.g. the Python pipeline's) into an empty or partial
//! index: walk Bronze once, hash every data file, record `Adopted` events. Nothing is copied
//! and nothing is trusted blindly: each file is hashed, and only files exactly where their
//! name says are adopted. Temp files, strays and links are reported, never adopted.

use crate::bronze::layout::Entry;
use crate::bronze::{inventory, Bronze};
use crate::clock::Clock;
use crate::config::StreamMap;
use crate::error::{Error, Result};
use crate::feed::Feed;
use crate::identity::{FeedId, FileKey, SourceId};
use crate::parallel::parallel_map;
use crate::store::event::{Event, EventKind, PassMode, ScanSummary, SourceVersion};
use crate::store::Store;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// Files hashed and recorded per transaction.
const CHUNK: usize = 5000;

/// What an adoption did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdoptReport {
    pub adopted: u64,
    /// Data files the index already knew (left alone).
    pub already_known: u64,
    pub failed: u64,
    /// Temp files left by a crash.
    pub temp_files: Vec<String>,
    /// Files that are not adopted, with why.
    pub strays: Vec<(String, &'static str)>,
    pub millis: u64,
}

/// Walks Bronze and records every unknown data file as `Adopted`: the seed's files by their
/// layout, and the files of `feeds` (declared feeds, by their id in the store) exactly where
/// the feed's layout puts their name.
pub fn adopt(
    store: &Store,
    bronze: &dyn Bronze,
    streams: &StreamMap,
    feeds: &[(FeedId, &Feed)],
    clock: &dyn Clock,
    threads: usize,
) -> Result<AdoptReport> {
    let started = Instant::now();
    let known = known_keys(store)?;
    let mut report = AdoptReport::default();
    let mut todo = Vec::new();
    let of_feed = |entry| match entry {
        Entry::Stray { rel, why } => match feed_file(feeds, &rel) {
            Some(key) => Entry::Data { key, rel },
            None => Entry::Stray { rel, why },
        },
        entry => entry,
    };
    inventory(bronze, "", streams, &mut |entry| match of_feed(entry) {
        Entry::Data { key, .. } if known.contains(&key.to_bytes()) => report.already_known += 1,
        Entry::Data { key, rel } => todo.push((key, rel)),
        Entry::Temp { rel } => report.temp_files.push(rel),
        Entry::KeptAside { .. } => {}
        Entry::Stray { rel, why } => report.strays.push((rel, why)),
        Entry::Link { rel } => report.strays.push((rel, "a symbolic link: never adopted")),
    })
    .map_err(|e| Error::io(format!("walking {}", bronze.describe()), e))?;
    drop(known);
    todo.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    for chunk in todo.chunks(CHUNK) {
        let at_ms = clock.now_utc().timestamp_millis();
        let events = parallel_map(chunk, threads, |(key, rel)| adopt_one(bronze, key, rel));
        for e in &events {
            match e {
                EventKind::Adopted { .. } => report.adopted += 1,
                _ => report.failed += 1,
            }
        }
        let events: Vec<Event> = events
            .into_iter()
            .map(|kind| Event { at_ms, kind })
            .collect();
        store.append(&events)?;
    }
    report.millis = started.elapsed().as_millis() as u64;
    store.append(&[Event {
        at_ms: clock.now_utc().timestamp_millis(),
        kind: summary(&report),
    }])?;
    Ok(report)
}

/// The key of a declared feed's file at `rel`: a name one of `feeds` reads, exactly where its
/// layout puts it (a name elsewhere stays a stray).
fn feed_file(feeds: &[(FeedId, &Feed)], rel: &str) -> Option<FileKey> {
    let name = rel.rsplit_once('/').map_or(rel, |(_, name)| name);
    feeds.iter().find_map(|(id, feed)| {
        let placed = feed.locate(name)?;
        (placed.rel == rel).then(|| FileKey {
            source: SourceId::Feed(*id),
            name: name.as_bytes().to_vec(),
        })
    })
}

fn known_keys(store: &Store) -> Result<HashSet<Vec<u8>>> {
    let mut known = HashSet::new();
    for source in store.sources()? {
        for (name, state) in store.states_of(source)? {
            if state.is_ingested() {
                known.insert(FileKey { source, name }.to_bytes());
            }
        }
    }
    Ok(known)
}

/// Hashes one Bronze file and describes it as `Adopted` (or `Failed` if it cannot be read, or
/// is a link or lies behind one: a link's target is never taken for our data).
pub fn adopt_one(bronze: &dyn Bronze, key: &FileKey, rel: &str) -> EventKind {
    let facts = bronze.stat(rel).and_then(|m| {
        let m = m.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        Ok(SourceVersion {
            size: m.size,
            mtime_ns: m.mtime_ns,
        })
    });
    match facts.and_then(|facts| Ok((facts, bronze.hash(rel)?))) {
        Ok((facts, hash)) => EventKind::Adopted {
            file: key.clone(),
            facts,
            hash,
            bronze: rel.to_owned(),
        },
        Err(e) => EventKind::Failed {
            file: key.clone(),
            facts: None,
            error: format!("adopting {rel}: {e}"),
        },
    }
}

fn summary(r: &AdoptReport) -> EventKind {
    EventKind::ScanCompleted(ScanSummary {
        mode: Some(PassMode::Adopt),
        listed: r.adopted + r.already_known + r.failed,
        adopted: r.adopted,
        failed: r.failed,
        skipped: (r.temp_files.len() + r.strays.len()) as u64,
        millis: r.millis,
        ..Default::default()
    })
}
