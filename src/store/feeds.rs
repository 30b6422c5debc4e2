//! The feeds a store knows: each feed declared in the config file gets a number on its first
//! sight (a `FeedDeclared` event, so the log alone rebuilds everything), and its files' keys
//! carry it (`SourceId::Feed`). The store reads a declared feed's names with its pattern, so
//! its records are bucketed and its presence and baseline rows kept by (feed, stream, slot),
//! whatever the names look like. The seed's two feeds keep their own keys (`s`, `w`) and their
//! own grammar (`naming`), so no store written before feeds existed needs migrating.
//!
//! A declaration is immutable: a feed's pattern decides where its records live, so a pattern
//! that changed under the same name would lose them. Such a change is refused
//! ([`Feeds::check`]); a new pattern is a new feed name.

use crate::error::{Error, Result};
use crate::grammar::{Cadence, Pattern};
use crate::identity::{FeedId, FileKey, SourceId};
use crate::naming::{minute_index, SensorName};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `feeds`: feed id → encoded [`FeedDeclaration`]. Equals the fold of the `FeedDeclared`
/// events; absent until a feed is declared.
pub const FEEDS: TableDefinition<u16, &[u8]> = TableDefinition::new("feeds");

/// The names the seed's two flows carry as feeds; never declared, never given an id.
pub const SEED_FEEDS: [&str; 2] = ["sensors", "weather"];

/// What the store keeps of a feed: enough to read its names (its name, pattern and cadence).
/// Where its files come from and land is configuration, not history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedDeclaration {
    pub id: FeedId,
    pub name: String,
    pub pattern: String,
    pub cadence_minutes: u32,
}

/// Where a declared feed's file sits in time: its stream's row key and its naive minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The `baseline` and `presence` key: `FEED/STREAM`, or `FEED/` for a feed without
    /// `{stream}`. Every one holds a `/`, which no seed stream name may, so the two never meet.
    pub stream: String,
    /// The slot, as `naming::minute_index`.
    pub minute: i64,
}

/// Whether a `baseline` or `presence` stream key is a declared feed's ([`stream_key`]).
pub fn is_feed_stream(stream: &str) -> bool {
    stream.contains('/')
}

/// A feed's stream row key (see [`Place::stream`]).
pub fn stream_key(feed: &str, stream: Option<&str>) -> String {
    format!("{feed}/{}", stream.unwrap_or(""))
}

/// The feeds of one store, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feeds {
    by_id: BTreeMap<u16, Known>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    declaration: FeedDeclaration,
    pattern: Pattern,
}

/// The last bucket: names of a feed its pattern does not read (recorded as skipped).
const UNPLACED: u32 = u32::MAX;

impl Feeds {
    /// No feed declared: what the seed's keys are split with.
    pub const NONE: Feeds = Feeds {
        by_id: BTreeMap::new(),
    };

    /// Takes a declaration in (the fold of `FeedDeclared`). The same declaration again changes
    /// nothing. One that would change a declaration (another feed under a given id, a feed's
    /// name under another id) or whose pattern does not parse is refused: it would move where
    /// records already kept are looked for, so it cannot be appended, and a log holding one is
    /// damaged.
    pub fn insert(&mut self, declaration: &FeedDeclaration) -> Result<()> {
        if let Some(known) = self.by_id.get(&declaration.id.0) {
            return match known.declaration == *declaration {
                true => Ok(()),
                false => Err(damaged(declaration, "change of a declared feed")),
            };
        }
        if self.by_name(&declaration.name).is_some() {
            return Err(damaged(declaration, "second id for a declared feed"));
        }
        let Some(cadence) = Cadence::from_minutes(declaration.cadence_minutes) else {
            return Err(damaged(declaration, "its cadence"));
        };
        let pattern = Pattern::parse(&declaration.pattern, cadence)
            .map_err(|_| damaged(declaration, "its pattern"))?;
        self.by_id.insert(
            declaration.id.0,
            Known {
                declaration: declaration.clone(),
                pattern,
            },
        );
        Ok(())
    }

    pub fn get(&self, id: FeedId) -> Option<&FeedDeclaration> {
        self.by_id.get(&id.0).map(|k| &k.declaration)
    }

    pub fn by_name(&self, name: &str) -> Option<&FeedDeclaration> {
        (self.by_id.values())
            .map(|k| &k.declaration)
            .find(|d| d.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &FeedDeclaration> {
        self.by_id.values().map(|k| &k.declaration)
    }

    /// What declaring `name` with `pattern` means for this store: `Ok(Some(id))` when it is
    /// declared exactly so already, `Ok(None)` when it is new, an error naming the feed when
    /// it was declared with another pattern or cadence.
    pub fn check(&self, name: &str, pattern: &Pattern) -> Result<Option<FeedId>> {
        if SEED_FEEDS.contains(&name) {
            return Err(Error::Config(format!(
                "feed `{name}`: the name is the seed's own flow; a declared feed needs another name"
            )));
        }
        let Some(known) = self.by_id.values().find(|k| k.declaration.name == name) else {
            return Ok(None);
        };
        if known.pattern.text() == pattern.text() && known.pattern.cadence() == pattern.cadence() {
            return Ok(Some(known.declaration.id));
        }
        Err(Error::Config(format!(
            "feed `{name}`: this store holds it with pattern `{}` every {}, the config says \
             `{}` every {}; a feed's pattern decides where its records are kept, so it cannot \
             change: declare the new pattern as a new feed (another name)",
            known.pattern.text(),
            known.pattern.cadence(),
            pattern.text(),
            pattern.cadence()
        )))
    }

    /// The id a new feed gets: the next after every id given, never one given before.
    pub fn next_id(&self) -> Result<FeedId> {
        match self.by_id.keys().next_back() {
            None => Ok(FeedId(0)),
            Some(&last) => last
                .checked_add(1)
                .map(FeedId)
                .ok_or_else(|| Error::Config("a store holds at most 65,536 feeds".into())),
        }
    }

    /// Where a declared feed's file sits; `None` for an undeclared feed or a name its pattern
    /// does not read.
    pub fn place(&self, id: FeedId, name: &[u8]) -> Option<Place> {
        let known = self.by_id.get(&id.0)?;
        let parsed = known.pattern.parse_name_bytes(name).ok()?;
        Some(Place {
            stream: stream_key(&known.declaration.name, parsed.stream.as_deref()),
            minute: minute_index(parsed.slot),
        })
    }

    /// Where any file sits in its stream's rows: a sensor name by the seed's grammar (its
    /// apartment is its stream), a declared feed's by its pattern; `None` for the weather, a
    /// name its grammar does not read and an undeclared feed.
    pub fn place_of(&self, key: &FileKey) -> Option<Place> {
        match key.source {
            SourceId::Share => {
                let name = SensorName::parse_bytes(&key.name).ok()?;
                Some(Place {
                    stream: name.apartment,
                    minute: minute_index(name.minute),
                })
            }
            SourceId::Weather => None,
            SourceId::Feed(id) => self.place(id, &key.name),
        }
    }

    /// A `files-v2` bucket and entry key for a declared feed's file: the key's prefix and the
    /// hour of its slot (a bucket holds one hour of every stream of the feed, as the seed's
    /// hold one hour of every apartment), then the whole name. A name the pattern does not
    /// read goes to the feed's last bucket.
    pub fn split(&self, key: &FileKey) -> (Vec<u8>, Vec<u8>) {
        let mut bucket = key.source.key_prefix();
        let hour = match key.source {
            SourceId::Feed(id) => self
                .place(id, &key.name)
                .map_or(UNPLACED, |p| hour_bytes(p.minute)),
            _ => UNPLACED,
        };
        bucket.extend_from_slice(&hour.to_be_bytes());
        (bucket, key.name.clone())
    }
}

/// An hour number that sorts as the time does: hours since 1970 shifted into `u32` (names
/// carry years 0000–9999, about ±88 million hours), never [`UNPLACED`].
fn hour_bytes(minute: i64) -> u32 {
    let hour = minute.div_euclid(60) + (1 << 31);
    u32::try_from(hour)
        .unwrap_or(UNPLACED - 1)
        .min(UNPLACED - 1)
}

fn damaged(declaration: &FeedDeclaration, what: &str) -> Error {
    Error::Codec {
        what: "feed declaration",
        detail: format!(
            "feed `{}` (id {}): an invalid declaration ({what})",
            declaration.name, declaration.id.0
        ),
    }
}

/// Reads the `feeds` table (absent: none declared).
pub fn read(table: Option<&impl redb::ReadableTable<u16, &'static [u8]>>) -> Result<Feeds> {
    let mut feeds = Feeds::default();
    let Some(table) = table else {
        return Ok(feeds);
    };
    for row in table.iter()? {
        let (_, value) = row?;
        let declaration: FeedDeclaration = super::codec::decode("feed declaration", value.value())?;
        feeds.insert(&declaration)?;
    }
    Ok(feeds)
}

#[cfg(test)]
#[path = "feeds_tests.rs"]
mod tests;
