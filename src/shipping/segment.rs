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
use crate::record::stream_of;
use crate::store::event::{Event, EventKind};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};

/// The line schema's version, in every line (`v`): a reader refuses lines of a newer one.
pub const LINE_VERSION: u32 = 1;

/// One event as shipped. `None` fields are `null`: every line has every key.
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub v: u32,
    /// The event's sequence number in the log: dense from 0, never reused.
    pub seq: u64,
    /// When the event was recorded, RFC 3339 in UTC with milliseconds.
    pub at: Option<String>,
    pub at_ms: i64,
    /// `copied`, `adopted`, `skipped`, `failed`, `discovered`, `scan-completed`, …
    pub kind: String,
    /// `share` or `weather`: the source of the file the event is about.
    pub source: Option<String>,
    /// The file's stream (its apartment, `weather`, or `_other`).
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

impl Line {
    pub fn of(seq: u64, event: &Event) -> Line {
        let kind = &event.kind;
        let file = kind.file();
        let (bronze, blake3, size, reason) = details(kind);
        Line {
            v: LINE_VERSION,
            seq,
            at: chrono::DateTime::from_timestamp_millis(event.at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            at_ms: event.at_ms,
            kind: kind.name().to_owned(),
            source: file.map(|f| f.source.name().to_owned()),
            stream: file.map(stream_of),
            file: file.map(|f| f.display_name()),
            bronze,
            blake3: blake3.map(ContentHash::to_hex),
            size,
            reason,
            event: kind.clone(),
        }
    }
}

type Details = (
    Option<String>,
    Option<ContentHash>,
    Option<u64>,
    Option<String>,
);

/// The flat fields of an event: Bronze path, hash, size, reason.
fn details(kind: &EventKind) -> Details {
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
        } => (Some(bronze.clone()), Some(*hash), Some(facts.size), None),
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
            Some(bronze.clone()),
            *bronze_hash,
            None,
            Some(finding.code().to_owned()),
        ),
        EventKind::SourceFailed { error, .. } => (None, None, None, Some(error.clone())),
        EventKind::ScanCompleted(_) | EventKind::AuditCompleted(_) | EventKind::HookRun(_) => {
            (None, None, None, None)
        }
    }
}

/// blake3 (hex) of the line event `seq` ships as: what the manifest's `tail` compares.
pub fn line_hash(seq: u64, event: &Event) -> String {
    let json = serde_json::to_vec(&Line::of(seq, event)).expect("a log line serializes");
    ContentHash::of(&json).to_hex()
}

/// The segment of `events`, the first of which has sequence number `first`.
pub fn encode(first: u64, events: &[Event]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for (i, event) in events.iter().enumerate() {
        let line = Line::of(first + i as u64, event);
        // Writing into memory cannot fail, and these types always serialize.
        let json = serde_json::to_vec(&line).expect("a log line serializes");
        gz.write_all(&json).expect("writing into memory");
        gz.write_all(b"\n").expect("writing into memory");
    }
    gz.finish().expect("writing into memory")
}

/// The events of a segment, checked to be numbered `first`, `first + 1`, … `name` is for
/// errors: a damaged segment is an error naming it and the line.
pub fn decode(name: &str, bytes: &[u8], first: u64) -> Result<Vec<Event>> {
    let damaged = |line: usize, why: String| {
        Error::ShippedLog(format!(
            "segment {name} is damaged at line {}: {why}",
            line + 1
        ))
    };
    let mut events = Vec::new();
    for (i, text) in BufReader::new(GzDecoder::new(bytes)).lines().enumerate() {
        let text = text.map_err(|e| damaged(i, e.to_string()))?;
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
        let bytes = encode(7, &events);
        assert_eq!(decode("s", &bytes, 7).unwrap(), events);
        assert_eq!(bytes, encode(7, &events));
        let text = std::io::read_to_string(GzDecoder::new(&bytes[..])).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["seq"], 7);
        assert_eq!(first["kind"], "copied");
        assert_eq!(first["stream"], "JimmyLoup");
        assert_eq!(first["blake3"], ContentHash::of(b"{}").to_hex());
        assert_eq!(first["at"], "2023-11-14T22:13:20.123Z");
    }

    /// A segment whose numbering does not continue where it should, or whose bytes are cut,
    /// is refused naming the segment.
    #[test]
    fn a_damaged_or_misplaced_segment_is_refused_by_name() {
        let bytes = encode(7, &sample());
        let err = decode("seg-a", &bytes, 8).unwrap_err().to_string();
        assert!(
            err.contains("seg-a") && err.contains("sequence 7 where 8"),
            "{err}"
        );
        let cut = &bytes[..bytes.len() - 9];
        let err = decode("seg-b", cut, 7).unwrap_err().to_string();
        assert!(err.contains("seg-b"), "{err}");
    }
}
