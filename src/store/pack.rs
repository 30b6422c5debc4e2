//! Layout v2's packed values: many records in one redb value, deflated. redb costs ~80 B per
//! entry on top of its bytes, and a sensor file's name and Bronze path repeat its neighbours'
//! but for a digit or two; one value holding a run of neighbours pays the entry once and lets
//! deflate keep little more than each file's hash. (schema/README.md, "Layout v2".)
//!
//! A packed value: `2` (layout version), record count (`u32` LE), unpacked length (`u32` LE),
//! then the records, each bincode 2.0.1 `config::standard()` of its envelope-v1 type, deflated.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The layout version byte that starts every packed value.
pub const LAYOUT_V2: u8 = 2;

const HEADER: usize = 9;

/// deflate level: 6 packs ~10% tighter than 1 at twice the time, which is still small next to
/// copying the files (BENCHMARKS.md, "Event store v2").
const LEVEL: u8 = 6;

/// No packed value unpacks larger than this: a damaged length is an error, not an allocation.
const MAX_UNPACKED: usize = 256 << 20;

/// Records encoded back to back, not yet deflated: what a packed value holds.
#[derive(Debug, Default, Clone)]
pub struct Records {
    pub count: u32,
    pub bytes: Vec<u8>,
}

impl Records {
    /// Appends one record's encoding.
    pub fn push<T: Serialize>(&mut self, value: &T) {
        // Plain data always encodes into a Vec (as in `codec::encode`).
        bincode::serde::encode_into_std_write(value, &mut self.bytes, bincode::config::standard())
            .expect("plain data encodes");
        self.count += 1;
    }

    /// The encodings of `values`, in order.
    pub fn of<T: Serialize>(values: &[T]) -> Records {
        let mut out = Records::default();
        values.iter().for_each(|v| out.push(v));
        out
    }

    /// Deflates them into one value.
    pub fn pack(&self) -> Vec<u8> {
        let body = miniz_oxide::deflate::compress_to_vec(&self.bytes, LEVEL);
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
        let mut out = Vec::with_capacity(self.count as usize);
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
            let (value, used) =
                bincode::serde::decode_from_slice(rest, bincode::config::standard())
                    .map_err(|e| codec_err(what, e.to_string()))?;
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
    let len = word(5) as usize;
    if len > MAX_UNPACKED {
        return Err(codec_err(
            what,
            format!("unpacked length {len} is implausible"),
        ));
    }
    Ok((word(1), len))
}

fn codec_err(what: &'static str, detail: String) -> Error {
    Error::Codec { what, detail }
}
