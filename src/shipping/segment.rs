//! A segment of the shipped log: consecutive events as gzipped JSON lines, one [`Line`] per
//! event. The line is the change feed's schema (README, "The shipped log"): flat fields a
//! downstream reader queries (`kind`, `stream`, `file`, `bronze`, `blake3`, …), and `event`, the
//! event itself, from which `restore` rebuilds the log exactly.
//!
//! Encoding is deterministic (no time in the gzip header, fields in a fixed order), so the
//! same events always make the same bytes: a range shipped again after a crash lands as the
//! same object under the same name.

use crate::error::{Error, Result};
use crate::identity::ContentHash;
use crate::identity::{FeedId, FileKey, SourceId};
use crate::record::{stream_of, OTHER_STREAM};
use crate::store::event::{Event, EventKind};
use crate::store::feeds::Feeds;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Write};

/// The line schema's version, in every line (`v`): a reader refuses lines of a newer one.
/// 2 added `feed` (a declared feed's files: its name; their `stream`, its `{stream}` value).
pub const LINE_VERSION: u32 = 2;

/// One event as shipped, read back (written as [`LineOut`]). `None` fields are `null`: every
/// line has every key.
#[derive(Debug, Deserialize)]
pub struct Line {
    pub v: u32,
    /// The event's sequence number in the log: dense from 0, never reused.
    pub seq: u64,
    /// When the event was recorded, RFC 3339 in UTC with milliseconds.
    pub at: Option<String>,
    pub at_ms: i64,
    /// `copied`, `adopted`, `skipped`, `failed`, `discovered`, `scan-completed`, …
    pub kind: String,
    /// `share`, `weather` or `feed-<id>`: the source of the file the event is about.
    pub source: Option<String>,
    /// The declared feed a file belongs to, by name (since line version 2); `null` for the
    /// seed's files.
    #[serde(default)]
    pub feed: Option<String>,
    /// The file's stream: its apartment, `weather`, a declared feed's `{stream}` value (`null`
    /// for a feed without one), or `_other`.
    pub stream: Option<String>,
    /// The file's name on its source (not UTF-8: with replacement characters; `event` has
    /// the bytes).
    pub file: Option<String>,
    /// Where the file is in Bronze, relative to its root.
    pub bronze: Option<String>,
    /// blake3 of the copied (or found) bytes, hex.
    pub blake3: Option<String>,
    pub size: Option<u64>,
    /// Why a file was skipped, deferred or failed, or what an audit found.
    pub reason: Option<String>,
    /// The event whole, for `restore`.
    pub event: EventKind,
}

/// [`Line`] as written: the event by reference (a segment of 65,536 events is encoded without
/// copying one), the same keys in the same order.
#[derive(Serialize)]
struct LineOut<'a> {
    v: u32,
    seq: u64,
    at: Option<String>,
    at_ms: i64,
    kind: &'static str,
    source: Option<Cow<'static, str>>,
    feed: Option<String>,
    stream: Option<String>,
    file: Option<String>,
    bronze: Option<&'a str>,
    blake3: Option<String>,
    size: Option<u64>,
    reason: Option<String>,
    event: &'a EventKind,
}

impl<'a> LineOut<'a> {
    fn of(seq: u64, event: &'a Event, feeds: &Feeds) -> LineOut<'a> {
        let kind = &event.kind;
        let file = kind.file();
        let (bronze, blake3, size, reason) = details(kind);
        let (feed, stream) = match file {
            Some(
                f @ FileKey {
                    source: SourceId::Feed(id),
                    ..
                },
            ) => of_feed(feeds, *id, f),
            _ => (None, file.map(stream_of)),
        };
        LineOut {
            v: LINE_VERSION,
            seq,
            at: chrono::DateTime::from_timestamp_millis(event.at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            at_ms: event.at_ms,
            kind: kind.name(),
            source: file.map(|f| f.source.name()),
            feed,
            stream,
            file: file.map(|f| f.display_name()),
            bronze,
            blake3: blake3.map(ContentHash::to_hex),
            size,
            reason,
            event: kind,
        }
    }
}

/// A declared feed's file's `feed` and `stream`: the feed's name and the `{stream}` value its
/// pattern reads (none for a feed without `{stream}`); [`OTHER_STREAM`] for a name it does
/// not read.
fn of_feed(feeds: &Feeds, id: FeedId, file: &FileKey) -> (Option<String>, Option<String>) {
    let name = feeds.get(id).map(|d| d.name.clone());
    let stream = match feeds.place_of(file) {
        Some(place) => place
            .stream
            .split_once('/')
            .map(|(_, stream)| stream.to_owned())
            .filter(|stream| !stream.is_empty()),
        None => Some(OTHER_STREAM.to_owned()),
    };
    (name, stream)
}

type Details<'a> = (
    Option<&'a str>,
    Option<ContentHash>,
    Option<u64>,
    Option<String>,
);

/// The flat fields of an event: Bronze path, hash, size, reason.
fn details(kind: &EventKind) -> Details<'_> {
    match kind {
        EventKind::Copied {
            facts,
            hash,
            bronze,
            ..
        }
        | EventKind::Adopted {
            facts,
            hash,
            bronze,
            ..
        } => (Some(bronze), Some(*hash), Some(facts.size), None),
        EventKind::Discovered { facts, reason, .. } => {
            (None, None, Some(facts.size), Some(format!("{reason:?}")))
        }
        EventKind::Skipped { facts, reason, .. } => {
            (None, None, facts.map(|f| f.size), Some(reason.code()))
        }
        EventKind::Failed { facts, error, .. } => {
            (None, None, facts.map(|f| f.size), Some(error.clone()))
        }
        EventKind::AuditFinding {
            finding,
            bronze,
            bronze_hash,
            ..
        } => (
            Some(bronze),
            *bronze_hash,
            None,
            Some(finding.code().to_owned()),
        ),
        EventKind::SourceFailed { error, .. } => (None, None, None, Some(error.clone())),
        EventKind::ScanCompleted(_)
        | EventKind::AuditCompleted(_)
        | EventKind::HookRun(_)
        | EventKind::FeedDeclared(_) => (None, None, None, None),
    }
}

/// blake3 (hex) of event `seq` itself, what the manifest's `tail` compares: the event and its
/// number only, none of the line's derived fields (which a later release may derive
/// differently from the same event).
pub fn tail_hash(seq: u64, event: &Event) -> String {
    let json = serde_json::to_vec(&(seq, event)).expect("an event serializes");
    ContentHash::of(&json).to_hex()
}

/// The longest line a segment may hold: far above any event ingest writes (names and errors
/// are short), so a planted segment cannot make a reader hold one unbounded line.
const MAX_LINE: u64 = 1 << 20;

/// The segment of `events`, the first of which has sequence number `first`; declared feeds'
/// files are named by `feeds` (the store's declarations).
pub fn encode(first: u64, events: &[Event], feeds: &Feeds) -> Vec<u8> {
    // Level 4: measured on a 65,536-event segment of sensor files, 75 B an event in 0.20 s
    // where the default (6) gives 70 B in 0.29 s (zlib); compressing is most of shipping's cost.
    let mut gz = GzEncoder::new(Vec::new(), Compression::new(4));
    for (i, event) in events.iter().enumerate() {
        let line = LineOut::of(first + i as u64, event, feeds);
        // Writing into memory cannot fail, and these types always serialize.
        let json = serde_json::to_vec(&line).expect("a log line serializes");
        gz.write_all(&json).expect("writing into memory");
        gz.write_all(b"\n").expect("writing into memory");
    }
    gz.finish().expect("writing into memory")
}

/// The events of a segment, checked to be numbered `first`, `first + 1`, … and to be at most
/// `count`. `name` is for errors: a damaged segment is an error naming it and the line.
/// Decompression is bounded (by `count` lines of at most [`MAX_LINE`]), so a planted segment
/// that inflates without end is refused, not held in memory.
pub fn decode(name: &str, bytes: &[u8], first: u64, count: u64) -> Result<Vec<Event>> {
    let damaged = |line: usize, why: String| {
        Error::ShippedLog(format!(
            "segment {name} is damaged at line {}: {why}",
            line + 1
        ))
    };
    let mut events = Vec::new();
    let mut reader = BufReader::new(GzDecoder::new(bytes));
    let mut text = String::new();
    for i in 0.. {
        text.clear();
        let read = (&mut reader)
            .take(MAX_LINE)
            .read_line(&mut text)
            .map_err(|e| damaged(i, e.to_string()))?;
        if read == 0 {
            break;
        }
        if !text.ends_with('\n') {
            return Err(damaged(
                i,
                "a line cut short or longer than any event".into(),
            ));
        }
        if i as u64 >= count {
            return Err(damaged(i, format!("more than the {count} events named")));
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| damaged(i, e.to_string()))?;
        if line.v > LINE_VERSION {
            let why = format!("line version {} is newer than this release's", line.v);
            return Err(damaged(i, why));
        }
        let want = first + i as u64;
        if line.seq != want {
            return Err(damaged(
                i,
                format!("sequence {} where {want} belongs", line.seq),
            ));
        }
        events.push(Event {
            at_ms: line.at_ms,
            kind: line.event,
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::FileKey;
    use crate::store::event::{SkipReason, SourceVersion};

    fn sample() -> Vec<Event> {
        let facts = SourceVersion {
            size: 12,
            mtime_ns: 1_700_000_000_000_000_000,
        };
        vec![
            Event {
                at_ms: 1_700_000_000_123,
                kind: EventKind::Copied {
                    file: FileKey::share("18.08.2023 1000_JimmyLoup_received.json"),
                    facts,
                    hash: ContentHash::of(b"{}"),
                    bronze: "jimmy/2023/08/18/10/18.08.2023 1000_JimmyLoup_received.json".into(),
                    replaced: None,
                },
            },
            Event {
                at_ms: 1_700_000_000_124,
                kind: EventKind::Skipped {
                    // Not UTF-8: kept as bytes through the JSON.
                    file: FileKey::share(b"bad\xffname".to_vec()),
                    facts: Some(facts),
                    reason: SkipReason::BadName {
                        code: "pattern".into(),
                    },
                },
            },
        ]
    }

    /// A segment gives back exactly the events it was made of (a non-UTF-8 name included),
    /// and the same events always make the same bytes (a re-shipped range lands unchanged).
    #[test]
    fn a_segment_round_trips_and_is_deterministic() {
        let events = sample();
        let bytes = encode(7, &events, &Feeds::NONE);
        assert_eq!(decode("s", &bytes, 7, 2).unwrap(), events);
        assert_eq!(bytes, encode(7, &events, &Feeds::NONE));
        let text = std::io::read_to_string(GzDecoder::new(&bytes[..])).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["seq"], 7);
        assert_eq!(first["kind"], "copied");
        assert_eq!(first["stream"], "JimmyLoup");
        assert_eq!(
            (&first["v"], &first["feed"]),
            (&2.into(), &serde_json::Value::Null)
        );
        assert_eq!(first["blake3"], ContentHash::of(b"{}").to_hex());
        assert_eq!(first["at"], "2023-11-14T22:13:20.123Z");
    }

    /// A segment shipped by a release before `feed` (line version 1, without the key) is
    /// still read back whole.
    #[test]
    fn a_segment_of_line_version_1_is_still_read() {
        let events = sample();
        let text =
            std::io::read_to_string(GzDecoder::new(&encode(7, &events, &Feeds::NONE)[..])).unwrap();
        let old = text
            .replace("\"feed\":null,", "")
            .replace("\"v\":2", "\"v\":1");
        assert!(!old.contains("feed") && old.contains("\"v\":1"), "{old}");
        let mut gz = GzEncoder::new(Vec::new(), Compression::new(4));
        gz.write_all(old.as_bytes()).unwrap();
        assert_eq!(decode("v1", &gz.finish().unwrap(), 7, 2).unwrap(), events);
    }

    /// A segment whose numbering does not continue where it should, or whose bytes are cut,
    /// is refused naming the segment.
    #[test]
    fn a_damaged_or_misplaced_segment_is_refused_by_name() {
        let bytes = encode(7, &sample(), &Feeds::NONE);
        let err = decode("seg-a", &bytes, 8, 2).unwrap_err().to_string();
        assert!(
            err.contains("seg-a") && err.contains("sequence 7 where 8"),
            "{err}"
        );
        let cut = &bytes[..bytes.len() - 9];
        let err = decode("seg-b", cut, 7, 2).unwrap_err().to_string();
        assert!(err.contains("seg-b"), "{err}");
        let err = decode("seg-c", &bytes, 7, 1).unwrap_err().to_string();
        assert!(err.contains("more than the 1 events"), "{err}");
    }
}
