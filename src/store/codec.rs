//! The one place that turns stored values into bytes and back. Every value is a versioned
//! envelope: one format-version byte, then bincode (standard config) of that version's type.
//! Decoding matches on the version, so old logs stay readable when the types evolve.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Envelope version written today. Bump it (and keep decoding the old one) on any change to
/// `Event`, `FileRecord` or `StreamRecord`.
pub const CURRENT_VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![CURRENT_VERSION];
    // Serializing plain data into a Vec cannot fail; if it ever did, that is a programming
    // error in a type definition, not bad input.
    bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard())
        .expect("plain data encodes");
    out
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (value, trailing) = decode_leading(what, bytes)?;
    if trailing != 0 {
        let detail = format!("{trailing} trailing bytes");
        return Err(Error::Codec { what, detail });
    }
    Ok(value)
}

/// Decodes only the leading fields of a value (bincode is positional, so a struct holding the
/// first fields of `T` reads them and stops): for scans that need one field of every record.
pub fn decode_prefix<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    decode_leading(what, bytes).map(|(value, _)| value)
}

/// The value at the start of an envelope, and how many bytes of it were left unread.
fn decode_leading<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<(T, usize)> {
    let codec_err = |detail: String| Error::Codec { what, detail };
    match bytes.split_first() {
        Some((&1, body)) => bincode::serde::decode_from_slice(body, bincode::config::standard())
            .map(|(value, used)| (value, body.len() - used))
            .map_err(|e| codec_err(e.to_string())),
        Some((v, _)) => Err(codec_err(format!("unknown envelope version {v}"))),
        None => Err(codec_err("empty value".into())),
    }
}
