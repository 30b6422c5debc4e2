//! Identity types shared by every module: which file, which stream, which content, which event.
//! Newtypes rather than bare strings and integers, so a stream name is never mistaken for an
//! alias and a file key always carries the source it belongs to.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Which source a file came from; the first byte of every encoded [`FileKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SourceId {
    /// The sensor share (SMB): the seed's `sensors` feed.
    Share,
    /// The weather sFTP directory: the seed's `weather` feed.
    Weather,
    // Encoded by index: only ever append below this line.
    /// A feed declared in the config file, by the id the store gave its name
    /// (`store::feeds`). The seed's two keep their own tags, so their keys never changed.
    Feed(FeedId),
}

/// A declared feed's number in one store: given on the feed's first sight, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeedId(pub u16);

impl SourceId {
    /// Stable lower-case name, used in `meta` keys.
    pub fn name(self) -> Cow<'static, str> {
        match self {
            SourceId::Share => Cow::Borrowed("share"),
            SourceId::Weather => Cow::Borrowed("weather"),
            SourceId::Feed(FeedId(id)) => Cow::Owned(format!("feed-{id}")),
        }
    }

    /// The first bytes of every key of this source: a tag byte, and a declared feed's id
    /// (big-endian, so a feed's keys are contiguous).
    pub fn key_prefix(self) -> Vec<u8> {
        match self {
            SourceId::Share => vec![b's'],
            SourceId::Weather => vec![b'w'],
            SourceId::Feed(FeedId(id)) => {
                let [hi, lo] = id.to_be_bytes();
                vec![b'f', hi, lo]
            }
        }
    }

    /// The source a key starts with, and the rest of the key (its name).
    pub fn split_key(bytes: &[u8]) -> Option<(SourceId, &[u8])> {
        match bytes {
            [b's', rest @ ..] => Some((SourceId::Share, rest)),
            [b'w', rest @ ..] => Some((SourceId::Weather, rest)),
            [b'f', hi, lo, rest @ ..] => {
                Some((SourceId::Feed(FeedId(u16::from_be_bytes([*hi, *lo]))), rest))
            }
            _ => None,
        }
    }
}

/// A file on a source: its source and its raw name bytes (names may be non-UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub source: SourceId,
    /// Bytes in the store (bincode); text, or `{"b64": …}` when not UTF-8, in JSON (`shipping`).
    #[serde(with = "name_bytes")]
    pub name: Vec<u8>,
}

/// A name's serde form: the raw bytes for binary formats, exactly as derived for `Vec<u8>` (the
/// store's encoding must not change), and readable text for human-readable ones (the shipped
/// log's lines), with the bytes in base64 when they are not UTF-8, so nothing is lost.
mod name_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Readable {
        Text(String),
        Raw { b64: String },
    }

    pub fn serialize<S: Serializer>(name: &Vec<u8>, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return name.serialize(s);
        }
        match std::str::from_utf8(name) {
            Ok(text) => Readable::Text(text.to_owned()).serialize(s),
            Err(_) => Readable::Raw {
                b64: base64::engine::general_purpose::STANDARD.encode(name),
            }
            .serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if !d.is_human_readable() {
            return Vec::<u8>::deserialize(d);
        }
        match Readable::deserialize(d)? {
            Readable::Text(text) => Ok(text.into_bytes()),
            Readable::Raw { b64 } => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl FileKey {
    pub fn share(name: impl Into<Vec<u8>>) -> Self {
        FileKey {
            source: SourceId::Share,
            name: name.into(),
        }
    }

    /// Table key: the source's prefix (a tag byte, and a feed's id) then the name bytes;
    /// sorts by source, then name.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.source.key_prefix();
        out.extend_from_slice(&self.name);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (source, name) = SourceId::split_key(bytes)?;
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

/// A blake3 digest of a file's bytes. Serialized as its 32 bytes in binary formats (the store)
/// and as hex text in human-readable ones (the shipped log's lines).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return <[u8; 32]>::deserialize(d).map(ContentHash);
        }
        let hex = String::deserialize(d)?;
        ContentHash::from_hex(&hex)
            .ok_or_else(|| serde::de::Error::custom(format!("`{hex}` is not a blake3 hex digest")))
    }
}

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

    /// The digest written as 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        // Checked first: `from_str_radix` would take a sign (`+f`).
        if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(bytes.chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(ContentHash(out))
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
