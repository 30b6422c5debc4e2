//! Identity types shared by every module: which file, which stream, which content, which event.
//! Newtypes rather than bare strings and integers, so a stream name is never mistaken for an
//! alias and a file key always carries the source it belongs to.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which source a file came from; the first byte of every encoded [`FileKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SourceId {
    /// The sensor share (SMB).
    Share,
    /// The weather sFTP directory.
    Weather,
}

impl SourceId {
    /// Stable lower-case name, used in `meta` keys.
    pub fn name(self) -> &'static str {
        match self {
            SourceId::Share => "share",
            SourceId::Weather => "weather",
        }
    }

    fn tag(self) -> u8 {
        match self {
            SourceId::Share => b's',
            SourceId::Weather => b'w',
        }
    }
}

/// A file on a source: its source and its raw name bytes (names may be non-UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub source: SourceId,
    pub name: Vec<u8>,
}

impl FileKey {
    pub fn share(name: impl Into<Vec<u8>>) -> Self {
        FileKey {
            source: SourceId::Share,
            name: name.into(),
        }
    }

    /// Table key: one tag byte then the name bytes; sorts by source, then name.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.name.len());
        out.push(self.source.tag());
        out.extend_from_slice(&self.name);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (tag, name) = bytes.split_first()?;
        let source = match tag {
            b's' => SourceId::Share,
            b'w' => SourceId::Weather,
            _ => return None,
        };
        Some(FileKey {
            source,
            name: name.to_vec(),
        })
    }

    /// The name for humans; invalid UTF-8 is shown with replacement characters.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_name())
    }
}

/// A sensor stream, named by its apartment as it appears in file names (`JimmyLoup`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId(pub String);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A blake3 digest of a file's bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(h: blake3::Hash) -> Self {
        ContentHash(*h.as_bytes())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Serializes an optional hash as hex text (for JSON reports; the store uses bincode).
pub fn hex_opt<S: serde::Serializer>(h: &Option<ContentHash>, s: S) -> Result<S::Ok, S::Error> {
    match h {
        Some(h) => s.serialize_str(&h.to_hex()),
        None => s.serialize_none(),
    }
}

/// Position of an event in the log: dense, starting at 0, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventSeq(pub u64);
