//! The one place that turns single stored values into bytes and back (`pack` packs many, with
//! the same bincode). Every value is a versioned envelope: one format-version byte, then
//! bincode (standard config) of that version's type. Decoding matches on the version, so old
//! logs stay readable when the types evolve.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Envelope version written today. Bump it (and keep decoding the old one) on any change to
/// `Event`, `FileRecord` or `StreamRecord`.
pub const CURRENT_VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = super::pack::encode(value);
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(CURRENT_VERSION);
    out.extend_from_slice(&body);
    out
}

/// Decodes an envelope: the version byte, then that version's type (the same bincode, with the
/// same limits, as a packed record: `pack::decode`).
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let codec_err = |detail: String| Error::Codec { what, detail };
    match bytes.split_first() {
        Some((&1, body)) => super::pack::decode(what, body),
        Some((v, _)) => Err(codec_err(format!("unknown envelope version {v}"))),
        None => Err(codec_err("empty value".into())),
    }
}
