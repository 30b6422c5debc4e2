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

    /// Reads `reader` to its end and hashes what it read, retrying an interrupted read.
    /// 16 KiB at a time: blake3's `update_reader` zeroes a 64 KiB buffer per call, which made
    /// an audit of ~1.5 KB sensor files 6–8 % slower (BENCHMARKS.md, issue 26 before/after).
    pub fn of_reader(reader: &mut dyn std::io::Read) -> std::io::Result<Self> {
        let mut hasher = blake3::Hasher::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(hasher.finalize().into()),
                Ok(n) => {
                    hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::ContentHash;
    use std::io::{self, Read};

    /// A reader that is interrupted before every read and hands out at most 7 bytes at a time.
    struct Choppy<'a> {
        bytes: &'a [u8],
        interrupt: bool,
    }

    impl Read for Choppy<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(7).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// Hashing a reader is hashing its bytes, however they come: in small reads, across the
    /// buffer's size, after interrupted reads (retried, never taken for the end or an error).
    #[test]
    fn a_reader_hashes_as_its_bytes_whatever_the_reads() {
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let mut choppy = Choppy {
            bytes: &bytes,
            interrupt: false,
        };
        assert_eq!(
            ContentHash::of_reader(&mut choppy).unwrap(),
            ContentHash::of(&bytes)
        );
        assert_eq!(
            ContentHash::of_reader(&mut &bytes[..]).unwrap(),
            ContentHash::of(&bytes)
        );
    }
}
