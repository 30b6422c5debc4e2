//! Opening the store: creating it on first use, waiting while another process holds redb's
//! file lock (then [`Error::StoreLocked`]), the read-only open for checks that usually write
//! nothing, and bringing a store from an earlier release up to date on its first read-write
//! open (layout migration, then the `presence` table and the file counters it lacks). Every
//! open runs inside `damage`'s mark, since redb may repair the whole file while opening.

use super::presence::PresenceRebuild;
use super::{
    codec, damage, migrate, projection, tables, Db, Store, EVENTS_V2, LAYOUT_VERSION, META,
    PRESENCE,
};
use crate::error::{Error, Result};
use redb::{Database, DatabaseError, ReadableDatabase, ReadableTable};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// redb's page cache: 32 MiB, or `INGEST_STORE_CACHE_MB`. Writes come in name order within a
/// day and reads are scans or single lookups, so a small cache holds the working set; redb's
/// own default (1 GiB) only grew a first ingest's memory (measured: BENCHMARKS.md, "redb page
/// cache and first-ingest memory").
fn cache_bytes() -> usize {
    let mb = std::env::var("INGEST_STORE_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(32);
    mb << 20
}

impl Store {
    /// Opens the store, creating it if missing. While another process holds it, retries for up
    /// to `wait`, then fails with [`Error::StoreLocked`].
    pub fn open(path: &Path, wait: Duration) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let started = Instant::now();
        let mut told = false;
        loop {
            // Opening may repair the file (after a crash), reading all of it.
            let opened = damage::inside(|| {
                Database::builder()
                    .set_cache_size(cache_bytes())
                    .create(path)
            });
            match opened {
                Ok(db) => return damage::inside(|| Self::init(db, path)),
                Err(DatabaseError::DatabaseAlreadyOpen) if started.elapsed() < wait => {
                    if !told {
                        tracing::info!(store = %path.display(), "store busy, waiting");
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(Error::StoreLocked {
                        path: path.to_owned(),
                    })
                }
                Err(source) => {
                    return Err(Error::StoreOpen {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        }
    }

    /// Like [`Store::open`], but a missing store is an error: read-only commands must not
    /// create a store because of a mistyped path.
    pub fn open_existing(path: &Path, wait: Duration) -> Result<Store> {
        if !path.exists() {
            return Err(Error::Config(format!(
                "no store at {} (run `ingest run --once` first, or check --state)",
                path.display()
            )));
        }
        Self::open(path, wait)
    }

    /// Opens an existing, cleanly closed store read-only, without waiting: `None` if there is
    /// no store, another process has it, or redb would need to repair it (a read-write open
    /// does that). For checks that usually write nothing.
    pub fn open_read_only(path: &Path) -> Option<Store> {
        let db = damage::inside(|| {
            Database::builder()
                .set_cache_size(cache_bytes())
                .open_read_only(path)
        })
        .ok()?;
        let store = Store::new(Db::ReadOnly(db), path);
        // A v1 store is read only after the read-write open that migrates it.
        let layout = store.meta().ok()?.get(projection::META_SCHEMA).copied();
        (layout == Some(LAYOUT_VERSION)).then_some(store)
    }

    fn init(mut db: Database, path: &Path) -> Result<Store> {
        // An initialized store is opened without writing, so read-only commands and dry runs
        // leave the file untouched (but for the one-time migration of an older layout).
        if Self::is_initialized(&db)? {
            migrate::to_v2(&mut db, path)?;
            let store = Store::new(Db::ReadWrite(db), path);
            if !store.has_presence()? {
                store.build_presence()?;
            }
            if !store.has_file_counts()? {
                store.count_file_states()?;
            }
            return Ok(store);
        }
        let txn = db.begin_write()?;
        {
            txn.open_table(EVENTS_V2)?;
            let mut meta = txn.open_table(META)?;
            if meta.get(projection::META_SCHEMA)?.is_none() {
                meta.insert(projection::META_SCHEMA, LAYOUT_VERSION)?;
            }
            drop(meta);
            tables::LiveTables::open(&txn)?;
        }
        txn.commit()?;
        Ok(Store::new(Db::ReadWrite(db), path))
    }

    fn new(db: Db, path: &Path) -> Store {
        Store {
            db,
            path: path.to_owned(),
            last_bucket: Mutex::new(None),
            generation: AtomicU64::new(0),
            feeds: Mutex::default(),
        }
    }

    fn is_initialized(db: &Database) -> Result<bool> {
        let txn = db.begin_read()?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        Ok(meta.get(projection::META_SCHEMA)?.is_some())
    }

    /// Builds the `presence` table of a store written before it existed, by folding the log
    /// (once: every later append keeps it up to date). One pass over `events`, holding only
    /// the presence rows and each stream's newest minute in memory.
    fn build_presence(&self) -> Result<()> {
        let started = Instant::now();
        let mut rebuilt = PresenceRebuild::default();
        self.for_each_event(0, |_, event| rebuilt.apply(&event))?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(PRESENCE)?;
            for ((stream, day), row) in &rebuilt.days {
                table.insert((stream.as_str(), *day), codec::encode(row).as_slice())?;
            }
        }
        txn.commit()?;
        tracing::info!(
            store = %self.path.display(),
            rows = rebuilt.days.len(),
            ms = started.elapsed().as_millis() as u64,
            "built the presence table of a store from an earlier release"
        );
        Ok(())
    }
}
