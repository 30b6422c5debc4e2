//! Bronze in an object store (S3 and compatibles, through the `object_store` crate): the same
//! keys as the folder layout under a prefix, so downstream readers see the same tree.
//!
//! An object store has no rename, but an upload is all-or-nothing: an object is never visible
//! half-written. So [`ObjectBronze::stage`] streams the source once into a spool (memory, or an
//! unnamed temp file above [`SPOOL_IN_MEMORY`]) while hashing it, and `publish` uploads the
//! batch, [`UPLOADS`] at a time (multipart above the same size), with the blake3 in the
//! object's user metadata. Only after `publish` returns does the caller commit events.
//!
//! What a crash leaves, by instant: while staging, nothing in the bucket (the spool dies with
//! the process); during an upload, nothing under a final name (an unfinished multipart upload
//! is invisible); after an upload, before the commit, a complete object the log does not know,
//! which the `publishing` journal adopts at the next pass.
//!
//! Never overwrite: each destination is looked up before its upload, because servers such as
//! Garage ignore `If-None-Match` (the conditional create is a second line, not the first), and
//! different bytes already there are copied aside to `NAME.kept-HASH` first. Nothing in the
//! bucket is trusted: an existing object is hashed by reading it, never by its metadata.

use super::hashing;
use super::layout::{self, file_name, is_temp_name};
use super::{stage_outcome, unreachable, Bronze, EntryMeta, Found, ReadBack, StageOutcome, Staged};
use crate::blocking::BlockingRuntime;
use crate::identity::ContentHash;
use crate::seam::Result;
use crate::source::SourceMeta;
use crate::store::event::Replaced;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, PutPayload, WriteMultipart,
};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Staged bytes up to this size stay in memory and go up in one PUT; larger files are spooled
/// to a temp file and uploaded in parts of this size.
pub const SPOOL_IN_MEMORY: usize = 8 << 20;

/// Staged bytes held in memory by all spools together (a batch is up to a thousand files):
/// past it, further spools go to temp files, so a share of large files cannot exhaust memory.
/// Copy threads that check at once may pass it by one file each (at most 8 MiB apiece).
pub const MEMORY_BUDGET: usize = 64 << 20;

/// Uploads in flight at once during a publish (a batch is up to a thousand small files: the
/// round trips, not the bytes, are what a publish waits for).
pub const UPLOADS: usize = 32;

/// The user metadata key holding an object's blake3 (hex), for readers and `audit --quick`.
pub const HASH_METADATA: &str = "blake3";

/// A Bronze layer in an object store, below a prefix.
pub struct ObjectBronze {
    /// `object_store` is async and the passes are threads: every call blocks on this runtime.
    /// First, so it is shut down (without waiting) before the client is dropped.
    runtime: BlockingRuntime,
    store: Arc<dyn ObjectStore>,
    /// Key prefix without a trailing `/`; empty for the bucket's root.
    prefix: String,
    /// How the layer is named to people and the hook (`s3://bucket/prefix`).
    url: String,
    spools: Mutex<HashMap<u64, Spool>>,
    next_spool: AtomicU64,
    /// Bytes of the spools in memory now (see [`MEMORY_BUDGET`]).
    in_memory: Arc<AtomicUsize>,
    /// The names in each Bronze folder a stage looked into, listed once until the next
    /// publish: one LIST tells whether each of an hour's ~60 files exists, where a lookup per
    /// file would double a first ingest's requests.
    listings: Mutex<HashMap<String, Listing>>,
}

/// One folder's names, listed by the first stage that needs them (the others wait for it);
/// `None` when the folder cannot be listed because it holds a key that is not a path.
type Listing = Arc<OnceLock<Result<Option<HashSet<String>>, String>>>;

/// A staged copy's bytes, until it is published or discarded.
enum Spool {
    Memory(Charged),
    File(std::fs::File),
}

/// Staged bytes in memory, counted against [`MEMORY_BUDGET`] until dropped.
struct Charged {
    bytes: bytes::Bytes,
    meter: Arc<AtomicUsize>,
}

impl Drop for Charged {
    fn drop(&mut self) {
        self.meter.fetch_sub(self.bytes.len(), Ordering::Relaxed);
    }
}

impl ObjectBronze {
    /// A layer over `store` below `prefix` (`/`-separated, no leading or trailing `/`), named
    /// `url` in messages.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, url: String) -> io::Result<Self> {
        let runtime = BlockingRuntime::new("ingest-bronze", 2)?;
        Ok(ObjectBronze {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            url,
            runtime,
            spools: Mutex::new(HashMap::new()),
            next_spool: AtomicU64::new(0),
            in_memory: Arc::new(AtomicUsize::new(0)),
            listings: Mutex::new(HashMap::new()),
        })
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The object key of a Bronze path.
    fn key(&self, rel: &str) -> io::Result<Key> {
        let full = match self.prefix.as_str() {
            "" => rel.to_owned(),
            prefix => format!("{prefix}/{rel}"),
        };
        Key::parse(&full).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
    }

    /// The Bronze path of an object key below the prefix (`None` for one outside it).
    fn rel_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        match self.prefix.as_str() {
            "" => Some(key),
            prefix => key.strip_prefix(prefix)?.strip_prefix('/'),
        }
    }

    /// The blake3 of what is at `key` now, read from the object itself; `None` if absent.
    async fn existing_hash(&self, key: &Key) -> io::Result<Option<ContentHash>> {
        match self.hash_object(key).await {
            Ok(hash) => Ok(Some(hash)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn hash_object(&self, key: &Key) -> io::Result<ContentHash> {
        let mut body = self.store.get(key).await.map_err(io_error)?.into_stream();
        let mut hasher = blake3::Hasher::new();
        while let Some(chunk) = body.try_next().await.map_err(io_error)? {
            hasher.update(&chunk);
        }
        Ok(hasher.finalize().into())
    }

    /// Whether an object is at `rel`, from its folder's listing (see `listings`). A failed
    /// listing is not kept: the next stage lists again.
    fn present(&self, rel: &str) -> io::Result<bool> {
        let (folder, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let cell = Arc::clone(self.lock_listings().entry(folder.to_owned()).or_default());
        match cell.get_or_init(|| self.list_folder(folder)) {
            Ok(Some(names)) => Ok(names.contains(name)),
            // Not listable: each file of that folder is looked up by name instead.
            Ok(None) => Ok(true),
            Err(why) => {
                self.lock_listings().remove(folder);
                Err(unreachable(why.clone()))
            }
        }
    }

    /// The names in `folder`. A key there that is not a path (`a/../b`, written by another
    /// tool or planted) makes the client refuse the whole listing page: `None`, so that one
    /// planted key can neither hide files nor stop the pass.
    fn list_folder(&self, folder: &str) -> Result<Option<HashSet<String>>, String> {
        let prefix = self.key(folder).map_err(|e| e.to_string())?;
        match self.block_on(self.store.list_with_delimiter(Some(&prefix))) {
            Ok(listed) => Ok(Some(
                listed
                    .objects
                    .iter()
                    .filter_map(|m| m.location.filename().map(str::to_owned))
                    .collect(),
            )),
            Err(e @ object_store::Error::InvalidPath { .. }) => {
                tracing::warn!(folder, error = %e, "a Bronze folder holds a key that is not a path; looking its files up one by one");
                Ok(None)
            }
            Err(e) => Err(plain(&e.to_string())),
        }
    }

    /// Whether this layer's credentials may write, leaving nothing behind (`config check`:
    /// staging spools locally, so it cannot tell): a multipart upload to `rel` started and
    /// aborted, so no object is ever completed, and an upload whose abort fails is never
    /// listed either.
    pub fn probe_write(&self, rel: &str) -> Result<()> {
        let key = self.key(rel)?;
        self.block_on(async {
            let mut upload = self.store.put_multipart(&key).await?;
            upload.abort().await
        })
        .map_err(io_error)?;
        Ok(())
    }

    /// Bytes staged in memory now, for tests of the budget.
    pub fn staged_in_memory(&self) -> usize {
        self.in_memory.load(Ordering::Relaxed)
    }

    fn lock_listings(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listing>> {
        self.listings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, spool: Spool) -> String {
        let id = self.next_spool.fetch_add(1, Ordering::Relaxed);
        self.lock_spools().insert(id, spool);
        id.to_string()
    }

    fn take(&self, staged: &Staged) -> Option<Spool> {
        let id = staged.temp.parse().ok()?;
        self.lock_spools().remove(&id)
    }

    fn lock_spools(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Spool>> {
        self.spools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Uploads one staged copy: older different bytes copied aside first, then the new object
    /// (created only if absent, where the server honours that).
    async fn upload(&self, s: &Staged, spool: Option<Spool>) -> io::Result<Option<Replaced>> {
        let spool = spool.ok_or_else(|| io::Error::other(format!("{} is not staged", s.rel)))?;
        let key = self.key(&s.rel)?;
        let replaced = match s.replaces {
            Some(hash) => {
                let kept_as = layout::kept_rel(&s.rel, hash);
                let kept = self.key(&kept_as)?;
                self.store.copy(&key, &kept).await.map_err(io_error)?;
                Some(Replaced { hash, kept_as })
            }
            None => None,
        };
        let mode = match replaced {
            Some(_) => PutMode::Overwrite,
            None => PutMode::Create,
        };
        self.put(&key, spool, s.hash, mode).await?;
        Ok(replaced)
    }

    async fn put(
        &self,
        key: &Key,
        spool: Spool,
        hash: ContentHash,
        mode: PutMode,
    ) -> io::Result<()> {
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(HASH_METADATA.into()),
            hash.to_hex().into(),
        );
        match spool {
            Spool::Memory(charged) => {
                let bytes = charged.bytes.clone();
                let opts = PutOptions {
                    mode,
                    attributes,
                    ..Default::default()
                };
                let payload = PutPayload::from_bytes(bytes);
                self.store
                    .put_opts(key, payload, opts)
                    .await
                    .map_err(io_error)?;
                Ok(())
            }
            Spool::File(file) => self.put_parts(key, file, attributes).await,
        }
    }

    /// A large file in parts; an upload that fails is aborted (never visible either way).
    async fn put_parts(
        &self,
        key: &Key,
        mut file: std::fs::File,
        attributes: Attributes,
    ) -> io::Result<()> {
        let opts = PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        let upload = self
            .store
            .put_multipart_opts(key, opts)
            .await
            .map_err(io_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, SPOOL_IN_MEMORY);
        // Parts of an upload that fails are removed (a store bills them until they expire).
        if let Err(e) = send_parts(&mut writer, &mut file).await {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(io_error)?;
        Ok(())
    }

    /// The key prefix to list for the Bronze folder `under` (empty: the whole layer); `None`
    /// lists the whole bucket.
    fn listing_prefix(&self, under: &str) -> io::Result<Option<Key>> {
        match (under, self.prefix.as_str()) {
            ("", "") => Ok(None),
            (under, _) => self.key(under).map(Some),
        }
    }

    async fn walk_prefix(&self, under: &str, visit: &mut dyn FnMut(Found)) -> io::Result<usize> {
        let prefix = self.listing_prefix(under)?;
        let mut listing = self.store.list(prefix.as_ref());
        let mut seen = 0;
        // An empty object a console made as a "folder" (`raw/jimmy/`, listed as `raw/jimmy`)
        // is held back and dropped when the next key lies inside it: it is not a file.
        let mut held: Option<String> = None;
        let mut emit = |rel: String, visit: &mut dyn FnMut(Found)| {
            seen += 1;
            visit(Found { rel, link: false });
        };
        while let Some(meta) = listing.try_next().await.map_err(io_error)? {
            let Some(rel) = self.rel_of(meta.location.as_ref()) else {
                continue;
            };
            if let Some(marker) = held.take() {
                if !rel.starts_with(&format!("{marker}/")) {
                    emit(marker, visit);
                }
            }
            match meta.size {
                0 => held = Some(rel.to_owned()),
                _ => emit(rel.to_owned(), visit),
            }
        }
        if let Some(last) = held {
            emit(last, visit);
        }
        Ok(seen)
    }
}

impl Bronze for ObjectBronze {
    fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
        rel: &str,
    ) -> Result<StageOutcome> {
        let key = self.key(rel)?;
        let existing = match self.present(rel)? {
            true => self.block_on(self.existing_hash(&key))?,
            false => None,
        };
        let (spool, hash, copied) = spool_hashing(reader, &self.in_memory)?;
        let read = ReadBack {
            before,
            after: recheck()?,
            copied,
            hash,
        };
        Ok(stage_outcome(rel, read, existing, || self.keep(spool)))
    }

    fn open_staged(&self, staged: &Staged) -> Result<Box<dyn Read + Send>> {
        let spools = self.lock_spools();
        let spool = staged.temp.parse().ok().and_then(|id| spools.get(&id));
        match spool {
            Some(Spool::Memory(charged)) => Ok(Box::new(io::Cursor::new(charged.bytes.clone()))),
            Some(Spool::File(file)) => {
                let mut file = file.try_clone()?;
                file.rewind()?;
                Ok(Box::new(file))
            }
            None => Err(io::Error::other(format!("{} is not staged", staged.rel)).into()),
        }
    }

    fn discard(&self, staged: Staged) -> Result<()> {
        self.take(&staged);
        Ok(())
    }

    /// Uploads the batch. A key the client refuses fails that file only; any other failure
    /// (the store unreachable, a timeout after the client's retries, an answer that may follow
    /// a landed upload) leaves the batch's outcome unknown: `Err`, and the journal settles the
    /// batch at the next pass from what is in the bucket.
    ///
    /// The first such failure ends the batch at once: the uploads in flight are dropped and
    /// no further one starts. A stalled store then holds a pass for one request timeout, not
    /// one per 32 files of the batch (a batch of 1,000 once waited about an hour).
    fn publish(&self, batch: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>> {
        // The folders change now: the next stage lists them again.
        self.lock_listings().clear();
        let spools: Vec<Option<Spool>> = batch.iter().map(|s| self.take(s)).collect();
        self.block_on(async {
            let mut uploads = futures::stream::iter(batch.iter().zip(spools))
                .map(|(s, spool)| self.upload(s, spool))
                .buffered(UPLOADS);
            let mut results = Vec::with_capacity(batch.len());
            while let Some(result) = uploads.next().await {
                match result {
                    Err(e) if !is_one_objects(&e) => return Err(unreachable(e.to_string()).into()),
                    result => results.push(result.map_err(Into::into)),
                }
            }
            Ok(results)
        })
    }

    fn stat(&self, rel: &str) -> Result<Option<EntryMeta>> {
        let key = self.key(rel)?;
        match self.block_on(self.store.head(&key)) {
            Ok(meta) => Ok(Some(EntryMeta {
                size: meta.size,
                mtime_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io_error(e).into()),
        }
    }

    fn hash(&self, rel: &str) -> Result<ContentHash> {
        let key = self.key(rel)?;
        Ok(self.block_on(self.hash_object(&key))?)
    }

    /// From a HEAD request: the `blake3` metadata every upload carries (`NotFound` when there
    /// is no object, which answers `stat`'s question too).
    fn stored_hash(&self, rel: &str) -> Result<Option<(ContentHash, EntryMeta)>> {
        let key = self.key(rel)?;
        let head = GetOptions {
            head: true,
            ..Default::default()
        };
        let got = match self.block_on(self.store.get_opts(&key, head)) {
            Ok(got) => got,
            Err(e) => return Err(io_error(e).into()),
        };
        let meta = EntryMeta {
            size: got.meta.size,
            mtime_ns: got.meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
        };
        let stored = got
            .attributes
            .get(&Attribute::Metadata(HASH_METADATA.into()))
            .and_then(|hex| ContentHash::from_hex(hex));
        Ok(stored.map(|hash| (hash, meta)))
    }

    /// A listing of every key below `under`; `under` naming one object visits that object.
    fn walk(&self, under: &str, visit: &mut dyn FnMut(Found)) -> Result<()> {
        let seen = self.block_on(self.walk_prefix(under, visit))?;
        if seen == 0 && !under.is_empty() && self.stat(under)?.is_some() {
            visit(Found {
                rel: under.to_owned(),
                link: false,
            });
        }
        Ok(())
    }

    /// Lists at most one key.
    fn is_empty(&self) -> Result<bool> {
        let prefix = self.listing_prefix("")?;
        let first = self.block_on(async { self.store.list(prefix.as_ref()).try_next().await });
        Ok(first.map_err(io_error)?.is_none())
    }

    /// Our staging never writes temp objects; one found in the bucket was planted or left by
    /// another tool, and `audit --repair` removes it.
    fn remove_temp(&self, rel: &str) -> Result<()> {
        if !is_temp_name(file_name(rel)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel} is not a temp file"),
            )
            .into());
        }
        let key = self.key(rel)?;
        Ok(self.block_on(self.store.delete(&key)).map_err(io_error)?)
    }

    /// One PUT: an object is never visible half-written, and overwriting is what is asked.
    fn put_reserved(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        layout::check_reserved(rel)?;
        let key = self.key(rel)?;
        let payload = PutPayload::from(bytes.to_vec());
        self.block_on(self.store.put(&key, payload))
            .map_err(io_error)?;
        Ok(())
    }

    fn get_reserved(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        layout::check_reserved(rel)?;
        let key = self.key(rel)?;
        let got = self.block_on(async {
            match self.store.get(&key).await {
                // The size is known before the body is read.
                Ok(got) if got.meta.size > limit => Ok(Err(got.meta.size)),
                Ok(got) => got.bytes().await.map(|b| Ok(Some(b.to_vec()))),
                Err(object_store::Error::NotFound { .. }) => Ok(Ok(None)),
                Err(e) => Err(e),
            }
        });
        match got.map_err(io_error)? {
            Ok(bytes) => Ok(bytes),
            Err(_) => Err(super::fs::too_large(self.locate(rel), limit).into()),
        }
    }

    fn remove_reserved(&self, rel: &str) -> Result<()> {
        layout::check_reserved(rel)?;
        let key = self.key(rel)?;
        match self.block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(e).into()),
        }
    }

    fn locate(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url.trim_end_matches('/'))
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}

/// Writes the spooled file into the upload, at most two parts in flight.
async fn send_parts(writer: &mut WriteMultipart, file: &mut std::fs::File) -> io::Result<()> {
    file.rewind()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(()),
            n => writer.write(&buf[..n]),
        }
        writer.wait_for_capacity(2).await.map_err(io_error)?;
    }
}

/// Reads `reader` to its end into a spool while hashing; returns the spool, hash and length.
/// The bytes stay in memory while the file is at most [`SPOOL_IN_MEMORY`] and all spools in
/// memory (`meter`) stay within [`MEMORY_BUDGET`]; else they go to an unnamed temp file.
fn spool_hashing(
    reader: &mut dyn Read,
    meter: &Arc<AtomicUsize>,
) -> io::Result<(Spool, ContentHash, u64)> {
    let mut sink = SpoolWriter {
        memory: Vec::new(),
        file: None,
        meter,
    };
    let (hash, total) =
        hashing::copy_hashing(reader, &mut sink).map_err(hashing::Copying::into_error)?;
    let spool = match sink.file {
        Some(f) => Spool::File(f),
        None => {
            meter.fetch_add(sink.memory.len(), Ordering::Relaxed);
            Spool::Memory(Charged {
                bytes: sink.memory.into(),
                meter: Arc::clone(meter),
            })
        }
    };
    Ok((spool, hash, total))
}

/// Where [`spool_hashing`] writes: memory within the limits, then (all of it) a temp file.
struct SpoolWriter<'a> {
    memory: Vec<u8>,
    file: Option<std::fs::File>,
    meter: &'a Arc<AtomicUsize>,
}

impl Write for SpoolWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None if self.memory.len() + n > SPOOL_IN_MEMORY
                || self.meter.load(Ordering::Relaxed) + self.memory.len() + n > MEMORY_BUDGET =>
            {
                let mut f = tempfile::tempfile()?;
                f.write_all(&self.memory)?;
                f.write_all(buf)?;
                self.memory = Vec::new();
                self.file = Some(f);
            }
            None => self.memory.extend_from_slice(buf),
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a failed upload is about that object alone and certainly did not land: only a key
/// the client refuses before sending anything. Any other failure may follow an upload that
/// landed (a timeout; `AlreadyExists` when the client retried a create whose first attempt
/// landed; `NotFound` from aborting a multipart upload whose completion did land): the
/// batch's outcome is then unknown, and the journal settles it from what is in the bucket.
fn is_one_objects(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput
}

/// The object store's error as an `io::Error` of the matching kind (`NotFound` for a missing
/// object, so callers treat both layers alike). Anything not about one object (no connection,
/// a timeout, server errors after the client's retries, refused credentials) is
/// `Unreachable` (`seam::Kind`): the store as a whole.
fn io_error(e: object_store::Error) -> io::Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => io::ErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => {
            let why = format!(
                "{}: the object was written meanwhile by another writer (a second ingest with \
                 a store of its own writing the same prefix? each store must own its prefix)",
                plain(&e.to_string())
            );
            return io::Error::new(io::ErrorKind::AlreadyExists, why);
        }
        E::InvalidPath { .. } => io::ErrorKind::InvalidInput,
        _ => return unreachable(plain(&e.to_string())),
    };
    io::Error::new(kind, plain(&e.to_string()))
}

/// A client error as one plain line: an S3 error document in it (`<Error><Code>NoSuchBucket
/// </Code><Message>…</Message>…</Error>`, which the client passes on as it came) becomes its
/// code and message, so no XML reaches the log or the terminal.
fn plain(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error>")) else {
        return text.to_owned();
    };
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let from = text.find(&open)? + open.len();
        let to = from + text[from..].find("</")?;
        Some(text[from..to].trim().to_owned())
    };
    let head = text[..start].trim_end().trim_end_matches(':');
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!("{head}: {code}: {message}"),
        (Some(code), None) => format!("{head}: {code}"),
        _ => head.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    /// An S3 error document becomes its code and message; other text is left as it is.
    #[test]
    fn an_s3_error_document_becomes_one_plain_line() {
        let raw = "Client error with status 404 Not Found: <?xml version=\"1.0\" \
                   encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><Message>Bucket not \
                   found: gone</Message><Resource>/gone</Resource></Error>";
        assert_eq!(
            plain(raw),
            "Client error with status 404 Not Found: NoSuchBucket: Bucket not found: gone"
        );
        assert_eq!(plain("connection refused"), "connection refused");
    }
}
