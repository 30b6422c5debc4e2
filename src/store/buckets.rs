//! The `files-v2` table: the `files` projection, one packed value per bucket of neighbouring
//! names. A seed file's bucket is its key's first [`BUCKET_KEY_BYTES`] bytes (source tag and
//! `DD.MM.YYYY HH` of a sensor name: one hour of every stream, ~120 files); the value holds
//! the rest of each name with its record, in name order, as entries (`pack`): a lookup or a
//! scan decodes only the records it needs. Cutting keys to a prefix keeps their
//! order, so walking the buckets in key order visits every seed file in name order, as v1's
//! `files`. A declared feed's bucket is its prefix and its slot's hour, read with its pattern
//! (`feeds::Feeds::split`), and its entries are whole names: its files are visited by hour,
//! then name.

use super::feeds::Feeds;
use super::pack::{self, Level, Records};
use super::projection::FileRecord;
use super::projection::{FileState, StateAndFacts};
use crate::error::Result;
use crate::identity::{FileKey, SourceId};
use redb::{ReadableTable, Table, TableDefinition};
use std::collections::BTreeMap;

/// `files-v2`: bucket (the first bytes of `FileKey::to_bytes`) → packed entries (rest of the
/// key, bincode of the `FileRecord`) in key order.
pub const FILES_V2: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files-v2");

/// Tag byte + `DD.MM.YYYY HH`.
const BUCKET_KEY_BYTES: usize = 14;

const WHAT: &str = "file record";

/// One bucket's records, by the rest of their key.
pub type Bucket = BTreeMap<Vec<u8>, FileRecord>;

/// A file key split into its bucket and the rest: its place in the table, which orders files
/// by the pair.
pub fn split(key: &FileKey, feeds: &Feeds) -> (Vec<u8>, Vec<u8>) {
    if let SourceId::Feed(_) = key.source {
        return feeds.split(key);
    }
    let mut bytes = key.to_bytes();
    let rest = bytes.split_off(BUCKET_KEY_BYTES.min(bytes.len()));
    (bytes, rest)
}

/// The key of the file at `rest` in `bucket`: the inverse of [`split`]. `None` for a bucket
/// of no source (none is ever written).
fn join(bucket: &[u8], rest: &[u8]) -> Option<FileKey> {
    let (source, head) = SourceId::split_key(bucket)?;
    // A declared feed's bucket ends with its hour; its entries are whole names.
    let head = if let SourceId::Feed(_) = source {
        &[][..]
    } else {
        head
    };
    let mut name = Vec::with_capacity(head.len() + rest.len());
    name.extend_from_slice(head);
    name.extend_from_slice(rest);
    Some(FileKey { source, name })
}

/// A bucket's records; empty when it has none yet.
pub fn read(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    bucket: &[u8],
) -> Result<Bucket> {
    let mut out = Bucket::new();
    if let Some(value) = files.get(bucket)? {
        Records::unpack(WHAT, value.value())?.visit_entries(WHAT, |rest, record| {
            out.insert(rest.to_vec(), pack::decode(WHAT, record)?);
            Ok(true)
        })?;
    }
    Ok(out)
}

/// Writes a bucket packed at `level` (removes it when empty, which a fold never makes).
pub fn write(
    files: &mut Table<&'static [u8], &'static [u8]>,
    bucket: &[u8],
    records: &Bucket,
    level: Level,
) -> Result<()> {
    if records.is_empty() {
        files.remove(bucket)?;
        return Ok(());
    }
    let mut packed = Records::default();
    for (rest, record) in records {
        packed.push_entry(rest, &pack::encode(record));
    }
    files.insert(bucket, packed.pack_at(level).as_slice())?;
    Ok(())
}

/// One file's record (at `bucket` and `rest`, from [`split`]), decoding only it.
pub fn lookup(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    (bucket, rest): (Vec<u8>, Vec<u8>),
) -> Result<Option<FileRecord>> {
    let Some(value) = files.get(bucket.as_slice())? else {
        return Ok(None);
    };
    let mut found = None;
    Records::unpack(WHAT, value.value())?.visit_entries(WHAT, |r, record| {
        if r == rest.as_slice() {
            found = Some(pack::decode(WHAT, record)?);
        }
        Ok(r < rest.as_slice())
    })?;
    Ok(found)
}

/// Calls `visit` with the key and the encoded record of every file of `source` (or of all
/// sources) after the place `after` (a [`split`]), in table order, until it returns `false`.
fn for_each_entry(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    source: Option<SourceId>,
    after: Option<&(Vec<u8>, Vec<u8>)>,
    mut visit: impl FnMut(FileKey, &[u8]) -> Result<bool>,
) -> Result<()> {
    let prefix = source.map_or_else(Vec::new, SourceId::key_prefix);
    let from = match after {
        Some((bucket, _)) => bucket.clone().max(prefix.clone()),
        None => prefix.clone(),
    };
    let mut going = true;
    for row in files.range(from.as_slice()..)? {
        let (k, v) = row?;
        let bucket = k.value();
        if !bucket.starts_with(&prefix) {
            break;
        }
        // Only an entry after `after` in the table's (bucket, rest) order is visited.
        let resumed = after.filter(|(b, _)| b.as_slice() == bucket);
        Records::unpack(WHAT, v.value())?.visit_entries(WHAT, |rest, record| {
            if resumed.is_some_and(|(_, r)| rest <= r.as_slice()) {
                return Ok(true);
            }
            // A bucket of no source holds no file.
            if let Some(key) = join(bucket, rest) {
                going = visit(key, record)?;
            }
            Ok(going)
        })?;
        if !going {
            break;
        }
    }
    Ok(())
}

/// Calls `visit` with every file of `source` (or of all sources), in key order.
pub fn for_each(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    source: Option<SourceId>,
    mut visit: impl FnMut(FileKey, FileRecord) -> Result<()>,
) -> Result<()> {
    for_each_entry(files, source, None, |key, record| {
        visit(key, pack::decode(WHAT, record)?)?;
        Ok(true)
    })
}

/// Calls `visit` with the state and source facts of every file of `source`, in key order,
/// decoding only those two leading fields of each record (a reconcile's side of the merge).
pub fn for_each_state(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    source: SourceId,
    mut visit: impl FnMut(&[u8], StateAndFacts),
) -> Result<()> {
    for_each_entry(files, Some(source), None, |key, record| {
        visit(&key.name, pack::decode_leading(WHAT, record)?.0);
        Ok(true)
    })
}

/// Calls `visit` with every file's key, its state, and a way to decode its whole record
/// (a scan that needs few records whole skips decoding every hash).
pub fn for_each_state_lazily(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    mut visit: impl FnMut(FileKey, FileState, &dyn Fn() -> Result<FileRecord>) -> Result<()>,
) -> Result<()> {
    for_each_entry(files, None, None, |key, record| {
        let head: StateAndFacts = pack::decode_leading(WHAT, record)?.0;
        visit(key, head.state, &|| pack::decode(WHAT, record))?;
        Ok(true)
    })
}

/// Calls `visit` with every file after `after` (from the first without), in key order,
/// until it returns `false`.
pub fn for_each_after(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    after: Option<&(Vec<u8>, Vec<u8>)>,
    mut visit: impl FnMut(FileKey, FileRecord) -> bool,
) -> Result<()> {
    for_each_entry(files, None, after, |key, record| {
        Ok(visit(key, pack::decode(WHAT, record)?))
    })
}

/// How many files the table holds, from the values' headers alone.
pub fn count(files: &impl ReadableTable<&'static [u8], &'static [u8]>) -> Result<u64> {
    let mut total = 0;
    for row in files.iter()? {
        total += u64::from(pack::count(WHAT, row?.1.value())?);
    }
    Ok(total)
}
