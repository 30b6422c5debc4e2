//! Layout v2's packed values: many records in one redb value, deflated. redb costs ~80 B per
//! entry on top of its bytes, and a sensor file's name and Bronze path repeat its neighbours'
//! but for a digit or two; one value holding a run of neighbours pays the entry once and lets
//! deflate keep little more than each file's hash. (schema/README.md, "Layout v2".)
//!
//! A packed value: `2` (layout version), record count (`u32` LE), unpacked length (`u32` LE),
//! then the records, deflated. A record is bincode 2.0.1 `config::standard()` of its
//! envelope-v1 type (an event), or an entry: a key and a value, each a `u32` LE length and
//! its bytes (a file record: scans read the key and skip the value unread).

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The layout version byte that starts every packed value.
pub const LAYOUT_V2: u8 = 2;

const HEADER: usize = 9;

/// How hard deflate works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(u8);

impl Level {
    /// What the store keeps: level 6 packs tighter than 1 at about twice the time, still small
    /// next to copying the files.
    pub const STORED: Level = Level(6);
    /// For a scratch rebuild that is read once and thrown away (level 0, stored, measured no
    /// faster: its values are three times larger to write and read).
    pub const SCRATCH: Level = Level(1);
}

/// No packed value unpacks larger than this: a damaged length is an error, not an allocation.
const MAX_UNPACKED: usize = 256 << 20;

/// No record decodes into more than this (a damaged string length is an error, not an
/// allocation).
const MAX_RECORD: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD>()
}

/// One value's bincode encoding (no envelope: a packed value's header carries the version;
/// `codec::encode` puts one in front).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail; if it ever did, that is a programming
    // error in a type definition, not bad input.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("plain data encodes")
}

/// Decodes a whole value from `bytes` (nothing may be left over).
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (value, used) = decode_leading(what, bytes)?;
    match bytes.len() - used {
        0 => Ok(value),
        n => Err(codec_err(what, format!("{n} trailing bytes"))),
    }
}

/// Decodes the leading fields of a value (bincode is positional: a struct of `T`'s first
/// fields reads them and stops), and how many bytes that took.
pub fn decode_leading<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<(T, usize)> {
    bincode::serde::decode_from_slice(bytes, config()).map_err(|e| codec_err(what, e.to_string()))
}

/// Records encoded back to back, not yet deflated: what a packed value holds.
#[derive(Debug, Default, Clone)]
pub struct Records {
    pub count: u32,
    pub bytes: Vec<u8>,
}

impl Records {
    /// Appends one record's encoding.
    pub fn push<T: Serialize>(&mut self, value: &T) {
        // Plain data always encodes into a Vec (as in `encode`).
        bincode::serde::encode_into_std_write(value, &mut self.bytes, bincode::config::standard())
            .expect("plain data encodes");
        self.count += 1;
    }

    /// Appends one entry: `key` and `value`, each length-prefixed.
    pub fn push_entry(&mut self, key: &[u8], value: &[u8]) {
        for part in [key, value] {
            self.bytes
                .extend_from_slice(&(part.len() as u32).to_le_bytes());
            self.bytes.extend_from_slice(part);
        }
        self.count += 1;
    }

    /// Calls `visit` with each entry's key and value, in order, until it returns `false`.
    pub fn visit_entries(
        &self,
        what: &'static str,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut rest = self.bytes.as_slice();
        for _ in 0..self.count {
            let (key, after) = framed(what, rest)?;
            let (value, after) = framed(what, after)?;
            rest = after;
            if !visit(key, value)? {
                return Ok(());
            }
        }
        if !rest.is_empty() {
            return Err(codec_err(what, format!("{} trailing bytes", rest.len())));
        }
        Ok(())
    }

    /// The encodings of `values`, in order.
    pub fn of<T: Serialize>(values: &[T]) -> Records {
        let mut out = Records::default();
        values.iter().for_each(|v| out.push(v));
        out
    }

    /// Deflates them into one value, as the store keeps them.
    pub fn pack(&self) -> Vec<u8> {
        self.pack_at(Level::STORED)
    }

    /// Deflates them into one value at `level`.
    pub fn pack_at(&self, level: Level) -> Vec<u8> {
        let body = miniz_oxide::deflate::compress_to_vec(&self.bytes, level.0);
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.push(LAYOUT_V2);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(self.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Inflates a packed value; `what` names it in errors.
    pub fn unpack(what: &'static str, value: &[u8]) -> Result<Records> {
        let (count, len) = header(what, value)?;
        let bytes = miniz_oxide::inflate::decompress_to_vec_with_limit(&value[HEADER..], len)
            .map_err(|e| codec_err(what, format!("inflating: {e}")))?;
        if bytes.len() != len {
            return Err(codec_err(what, format!("{} bytes, not {len}", bytes.len())));
        }
        Ok(Records { count, bytes })
    }

    /// The records, decoded in order.
    pub fn decode<T: DeserializeOwned>(&self, what: &'static str) -> Result<Vec<T>> {
        // Every record is at least a byte: a damaged count cannot reserve more than that.
        let mut out = Vec::with_capacity((self.count as usize).min(self.bytes.len()));
        self.visit(what, |value| {
            out.push(value);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Decodes the records in order until `visit` returns `false`.
    pub fn visit<T: DeserializeOwned>(
        &self,
        what: &'static str,
        mut visit: impl FnMut(T) -> Result<bool>,
    ) -> Result<()> {
        let mut rest = self.bytes.as_slice();
        for _ in 0..self.count {
            let (value, used) = decode_leading(what, rest)?;
            rest = &rest[used..];
            if !visit(value)? {
                return Ok(());
            }
        }
        if !rest.is_empty() {
            return Err(codec_err(what, format!("{} trailing bytes", rest.len())));
        }
        Ok(())
    }
}

/// A `u32` LE length and that many bytes, from the front of `bytes`; and what follows.
fn framed<'a>(what: &'static str, bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
    let short = || codec_err(what, "an entry runs past the end of its value".into());
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(short)?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(short());
    }
    Ok(rest.split_at(len))
}

/// The record count of a packed value, read from its header alone.
pub fn count(what: &'static str, value: &[u8]) -> Result<u32> {
    header(what, value).map(|(count, _)| count)
}

fn header(what: &'static str, value: &[u8]) -> Result<(u32, usize)> {
    if value.len() < HEADER {
        return Err(codec_err(
            what,
            format!("{} bytes, shorter than a header", value.len()),
        ));
    }
    if value[0] != LAYOUT_V2 {
        return Err(codec_err(
            what,
            format!("unknown layout version {}", value[0]),
        ));
    }
    let word =
        |at: usize| u32::from_le_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    let (count, len) = (word(1), word(5) as usize);
    // Every record is at least one byte long.
    if len > MAX_UNPACKED || count as usize > len {
        let detail = format!("{count} records in {len} bytes is implausible");
        return Err(codec_err(what, detail));
    }
    Ok((count, len))
}

fn codec_err(what: &'static str, detail: String) -> Error {
    Error::Codec { what, detail }
}
