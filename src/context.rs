//! What a pass works with ([`Context`]): the store, the source, Bronze, the clock and the
//! settings, passed in so tests can swap any of it, plus the questions every step of a pass
//! asks of them (is a shutdown asking to stop, how late may a name be, is the share lost, is
//! a file still being written) and recording through [`crate::record`].

use crate::bronze::Bronze;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::Result;
use crate::naming::truncate_to_minute;
use crate::record::record_events_journaled;
use crate::seam::{Kind, SeamError};
use crate::source::{self, Counted, Source};
use crate::store::event::EventKind;
use crate::store::{Journal, Store};
use chrono::NaiveDateTime;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Everything a pass works with, passed in so tests can swap any of it.
pub struct Context<'a> {
    pub store: StoreAccess<'a>,
    /// Counted: a pass reports the work it asked of the source ([`Counted::work`]).
    pub source: &'a Counted<dyn Source + 'a>,
    pub bronze: &'a dyn Bronze,
    pub clock: &'a dyn Clock,
    pub settings: &'a Settings,
    /// Set by a shutdown: no new batch is started; the one in flight is finished.
    pub stop: Option<&'a AtomicBool>,
    /// What prediction remembers of each stream between passes (kept by the daemon).
    pub memory: Option<&'a StreamMemory>,
    /// Ship the log into Bronze as batches commit, once a minute at most
    /// (`shipping::SHIP_EVERY`): set by the commands that run real passes; off for the rest
    /// (tests and tools see exactly the Bronze writes they asked for).
    pub ship_as_it_goes: bool,
}

/// What prediction remembers of each stream between the daemon's passes, so a pass goes on
/// where the previous one stopped instead of looking at the same absent minutes again. In
/// memory only: after a restart (and in `run --once`) prediction starts from the store.
#[derive(Debug, Default)]
pub struct StreamMemory {
    /// The last minute a gap walk found absent: the next pass walks on after it.
    walked: Mutex<HashMap<String, NaiveDateTime>>,
    /// Where the hole sweep stopped, as a minute index: the next pass sweeps the missing
    /// minutes before it first.
    swept: Mutex<HashMap<String, i64>>,
}

impl StreamMemory {
    /// Where `stream`'s last gap walk ended, if one is remembered.
    pub fn walked(&self, stream: &str) -> Option<NaiveDateTime> {
        get(&self.walked, stream)
    }

    /// Remembers (`Some`) or forgets where `stream`'s gap walk ended.
    pub fn set_walked(&self, stream: &str, minute: Option<NaiveDateTime>) {
        set(&self.walked, stream, minute);
    }

    /// Where `stream`'s hole sweep stopped, if it did not finish a round.
    pub fn swept(&self, stream: &str) -> Option<i64> {
        get(&self.swept, stream)
    }

    /// Remembers (`Some`) or forgets where `stream`'s hole sweep stopped.
    pub fn set_swept(&self, stream: &str, minute: Option<i64>) {
        set(&self.swept, stream, minute);
    }
}

fn get<T: Copy>(map: &Mutex<HashMap<String, T>>, stream: &str) -> Option<T> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(stream).copied()
}

fn set<T>(map: &Mutex<HashMap<String, T>>, stream: &str, value: Option<T>) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    match value {
        Some(v) => map.insert(stream.to_owned(), v),
        None => map.remove(stream),
    };
}

/// How a pass reaches the store. The sensor flow holds it for a pass (local, short passes);
/// the weather flow opens it for each read or write, so a slow or hung server never holds it
/// during network I/O (the sensor flow and `status`, `log`, `audit` go on meanwhile).
pub enum StoreAccess<'a> {
    Held(&'a Store),
    PerUse { path: &'a Path, wait: Duration },
}

impl StoreAccess<'_> {
    /// The store's file.
    pub fn path(&self) -> &Path {
        match self {
            StoreAccess::Held(store) => store.path(),
            StoreAccess::PerUse { path, .. } => path,
        }
    }

    /// Runs `f` on the store (opened for it, if not held).
    pub fn with<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        match self {
            StoreAccess::Held(store) => f(store),
            StoreAccess::PerUse { path, wait } => f(&Store::open(path, *wait)?),
        }
    }
}

impl<'a> Context<'a> {
    pub fn new(
        store: &'a Store,
        source: &'a Counted<dyn Source + 'a>,
        bronze: &'a dyn Bronze,
        clock: &'a dyn Clock,
        settings: &'a Settings,
    ) -> Self {
        Context::with_store(StoreAccess::Held(store), source, bronze, clock, settings)
    }

    /// A context over any [`StoreAccess`].
    pub fn with_store(
        store: StoreAccess<'a>,
        source: &'a Counted<dyn Source + 'a>,
        bronze: &'a dyn Bronze,
        clock: &'a dyn Clock,
        settings: &'a Settings,
    ) -> Self {
        Context {
            store,
            source,
            bronze,
            clock,
            settings,
            stop: None,
            memory: None,
            ship_as_it_goes: false,
        }
    }

    /// Whether a shutdown asked the pass to stop taking new work.
    pub fn stopping(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// The latest minute a file name may carry to be copied now: the wall clock (the injected
    /// [`Clock`]) plus `Settings::future_tolerance`. A baseline never moves past it.
    pub fn horizon(&self) -> NaiveDateTime {
        truncate_to_minute(self.clock.now_local()) + self.settings.future_tolerance
    }

    /// Why the share as a whole looks lost, if it does: unreachable, or listing nothing at
    /// all (the empty folder a lost CIFS or FUSE mount leaves behind). Asked before a file the
    /// share had is concluded gone: a missing name on a lost share is an outage.
    pub fn share_lost(&self) -> Option<SeamError> {
        if let Err(e) = self.source.check() {
            return Some(e);
        }
        match source::is_empty(self.source) {
            Ok(false) => None,
            Ok(true) => Some(SeamError::msg(
                Kind::Lost,
                "it lists no entries (the empty mount point of an unmounted share?)",
            )),
            Err(e) => Some(e),
        }
    }
}

impl Context<'_> {
    /// Whether a file modified at `mtime_ns` may still be being written.
    pub fn is_young(&self, mtime_ns: i64) -> bool {
        let now = self
            .clock
            .now_utc()
            .timestamp_nanos_opt()
            .unwrap_or(i64::MAX);
        let min_age = self.settings.min_age.num_nanoseconds().unwrap_or(0);
        (now.saturating_sub(mtime_ns)).abs() < min_age
    }

    /// Records events in one transaction, dropping per-file events that would only repeat the
    /// file's current state (a file that fails the same way every pass is logged once).
    pub fn record(&self, kinds: Vec<EventKind>) -> Result<()> {
        self.record_journaled(kinds, &Journal::default())
    }

    /// [`Context::record`] with a change to the `publishing` journal in the same transaction.
    pub fn record_journaled(&self, kinds: Vec<EventKind>, journal: &Journal) -> Result<()> {
        let at_ms = self.clock.now_utc().timestamp_millis();
        if kinds.is_empty() && journal.is_empty() {
            return Ok(());
        }
        let batch = !journal.is_empty();
        self.store
            .with(|store| record_events_journaled(store, at_ms, kinds, journal))?;
        // A long pass ships its log as it goes, not only at its end (`shipping::SHIP_EVERY`).
        if batch && self.ship_as_it_goes && !self.stopping() && crate::shipping::due() {
            let shipped = self.store.with(|store| {
                crate::shipping::ship_after_pass(store, self.bronze);
                Ok(())
            });
            if let Err(e) = shipped {
                tracing::warn!(error = %e, "the log was not shipped mid-pass; the pass goes on");
            }
            // This ingester's heartbeats stay fresh through a pass longer than they last.
            crate::shipping::heartbeat::refresh(self.bronze);
        }
        Ok(())
    }
}
