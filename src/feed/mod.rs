//! Feeds: a time-named file feed is declared by a name pattern and a cadence, as values.
//! [`Cadence`] is how often a file comes (and the slots it comes in); [`Pattern`] is the name
//! grammar, checked once so that every name it formats parses back to the same slot. A
//! [`Feed`] is the whole declaration: where the files come from, their grammar, the streams
//! and where each lands in Bronze, the whole-file check and the names' time zone.
//! [`table`] reads `[[feed]]` tables of the config file into feeds, refusing a bad one by feed
//! and field; [`seed`] builds the seed's two (`sensors`, `weather`) when no table names them.

pub mod seed;
pub mod table;

pub use crate::grammar::{cadence, pattern, Cadence, Pattern, PatternError};

pub use crate::config::Check;
use crate::config::StreamMap;
use chrono::{Datelike, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use std::path::PathBuf;

/// One declared feed.
#[derive(Debug, Clone)]
pub struct Feed {
    /// Its name: lower-case letters, digits, `-`, `_` (it labels metrics and events).
    pub name: String,
    pub source: FeedSource,
    pub pattern: Pattern,
    pub streams: Streams,
    /// Where a file lands below Bronze, `{alias}/{YYYY}/{MM}/{DD}[/{HH}]` by default.
    pub layout: String,
    pub check: Check,
    /// The zone the names' times are in; `None`: the machine's.
    pub zone: Option<Tz>,
    /// Minutes without a new file before a stream is reported silent; `None`: scaled to the
    /// cadence.
    pub silence_minutes: Option<u32>,
}

impl Feed {
    pub fn cadence(&self) -> Cadence {
        self.pattern.cadence()
    }

    /// Where a file of this feed lands in Bronze: its layout with `alias` and the slot's time
    /// fields filled in, then the file's own name. `name` must be one the pattern parsed (so it
    /// holds no separator and is not a temp or kept-aside name).
    pub fn rel(&self, alias: &str, slot: NaiveDateTime, name: &str) -> String {
        let mut folder = self.layout.replace("{alias}", alias);
        for (field, value) in [
            ("{YYYY}", format!("{:04}", slot.year())),
            ("{MM}", format!("{:02}", slot.month())),
            ("{DD}", format!("{:02}", slot.day())),
            ("{HH}", format!("{:02}", slot.hour())),
            ("{mi}", format!("{:02}", slot.minute())),
        ] {
            folder = folder.replace(field, &value);
        }
        format!("{folder}/{name}")
    }

    /// A source name of this feed read into its stream's alias, its slot and its Bronze path;
    /// `None` for a name the pattern refuses or a stream the feed does not declare (those are
    /// skipped with a reason by the flow, never copied).
    pub fn locate(&self, name: &str) -> Option<Located> {
        let parsed = self.pattern.parse_name(name).ok()?;
        let alias = match (&self.streams, parsed.stream.as_deref()) {
            (Streams::Named(map), Some(stream)) => map.alias(stream)?.to_owned(),
            (Streams::Single(alias), None) => alias.clone(),
            _ => return None,
        };
        let rel = self.rel(&alias, parsed.slot, name);
        Some(Located {
            alias,
            slot: parsed.slot,
            rel,
        })
    }

    /// The Bronze layout when the feed sets none: by hour below a day, by day for daily feeds
    /// (the seed's two layouts).
    pub fn default_layout(cadence: Cadence) -> &'static str {
        if cadence.is_daily() {
            "{alias}/{YYYY}/{MM}/{DD}"
        } else {
            "{alias}/{YYYY}/{MM}/{DD}/{HH}"
        }
    }
}

/// A file of a feed, placed: its stream's alias, its slot and its path in Bronze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub alias: String,
    pub slot: NaiveDateTime,
    pub rel: String,
}

/// Where a feed's files come from; credentials stay in the settings that reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedSource {
    /// A folder: a mounted share, a mapped drive (`Z:\`) or a local folder.
    Folder(PathBuf),
    /// A share read natively, `smb://[USER@]HOST[:PORT]/SHARE[/DIR]`.
    Smb(String),
    /// `sftp://USER@HOST[:PORT]/PATH`.
    Sftp {
        user: String,
        host: String,
        port: u16,
        path: String,
    },
}

impl FeedSource {
    /// What it is, for messages and `config show` (never a password: none is accepted in it).
    pub fn describe(&self) -> String {
        match self {
            FeedSource::Folder(p) => p.display().to_string(),
            FeedSource::Smb(url) => url.clone(),
            FeedSource::Sftp {
                user,
                host,
                port,
                path,
            } => {
                // A path from SFTP_PATH may be relative to the login folder (`.`, `Meteo2`).
                let sep = if path.starts_with('/') { "" } else { "/" };
                format!("sftp://{user}@{host}:{port}{sep}{path}")
            }
        }
    }
}

/// The streams of a feed: `{stream}` values → Bronze aliases, or the one alias of a feed
/// whose pattern has no `{stream}`.
#[derive(Debug, Clone)]
pub enum Streams {
    Named(StreamMap),
    Single(String),
}

impl Streams {
    /// (stream, alias) pairs; a single-stream feed's stream is its alias.
    pub fn pairs(&self) -> Vec<(String, String)> {
        match self {
            Streams::Named(map) => map
                .iter()
                .map(|(s, a)| (s.to_owned(), a.to_owned()))
                .collect(),
            Streams::Single(alias) => vec![(alias.clone(), alias.clone())],
        }
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
