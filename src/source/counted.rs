//! Counting the work done against any [`Source`] (as object_store's `throttle.rs` adds
//! behaviour to any store by wrapping it): every source a run uses is built inside a
//! [`Counted`], so no implementation counts for itself and none can forget to.
//!
//! What counts: every `stat` is a lookup, every `list` a listing, every `open` an open,
//! whether or not the call succeeds (each is a round trip asked of the share). An emptiness
//! check ([`super::is_empty`]) is a lookup when the source reads only its first entry
//! ([`Source::peek_empty`]), else the listing it takes. `check` (is the source there at all)
//! is not counted: it is a health probe, not work on files.

use super::{Listed, Opened, Source, SourceMeta, SourceWork};
use crate::seam::Result;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source, and how often it was asked. `S` may be `dyn Source + Send`: a
/// `Box<Counted<DirSource>>` coerces to `Box<Counted<dyn Source + Send>>`.
#[derive(Debug)]
pub struct Counted<S: ?Sized> {
    lookups: AtomicU64,
    listings: AtomicU64,
    opens: AtomicU64,
    inner: S,
}

impl<S> Counted<S> {
    pub fn new(inner: S) -> Self {
        Counted {
            lookups: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            inner,
        }
    }
}

impl<S: ?Sized> Counted<S> {
    /// The work done through this wrapper so far.
    pub fn work(&self) -> SourceWork {
        SourceWork {
            lookups: self.lookups.load(Ordering::Relaxed),
            listings: self.listings.load(Ordering::Relaxed),
            opens: self.opens.load(Ordering::Relaxed),
        }
    }

    /// The wrapped source, for what only it offers (a test double's files). Calls through it
    /// are not counted.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl<S: Source + ?Sized> Source for Counted<S> {
    fn stat(&self, name: &OsStr) -> Result<Option<SourceMeta>> {
        count(&self.lookups);
        self.inner.stat(name)
    }

    fn list(&self) -> Result<Vec<Listed>> {
        count(&self.listings);
        self.inner.list()
    }

    fn open(&self, name: &OsStr) -> Result<Opened> {
        count(&self.opens);
        self.inner.open(name)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn check(&self) -> Result<()> {
        self.inner.check()
    }

    fn lookups_in_flight(&self) -> usize {
        self.inner.lookups_in_flight()
    }

    fn peek_empty(&self) -> Option<Result<bool>> {
        let answer = self.inner.peek_empty();
        if answer.is_some() {
            count(&self.lookups);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{is_empty, DirSource, EntryKind};

    /// A folder known only by its listing: no cheaper emptiness check than listing it.
    struct Listing(Vec<&'static str>);

    impl Source for Listing {
        fn stat(&self, _: &OsStr) -> Result<Option<SourceMeta>> {
            Ok(None)
        }
        fn list(&self) -> Result<Vec<Listed>> {
            let entry = |name: &&str| Listed {
                name: name.into(),
                kind: EntryKind::File,
                meta: None,
            };
            Ok(self.0.iter().map(entry).collect())
        }
        fn open(&self, _: &OsStr) -> Result<Opened> {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound).into())
        }
        fn describe(&self) -> String {
            "a listing".into()
        }
    }

    /// Issue 26: one wrapper counts for any source, as each implementation used to: every
    /// stat, list and open once, failed ones included (each was a round trip); an emptiness
    /// check is one lookup where the source reads only its first entry (a folder), else the
    /// listing it takes; `check` is no work.
    #[test]
    fn counts_each_call_once_and_an_emptiness_check_as_what_it_costs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let share: Box<Counted<dyn Source + Send>> =
            Box::new(Counted::new(DirSource::new(dir.path())));
        share.check().unwrap();
        assert!(share.stat(OsStr::new("a")).unwrap().is_some());
        assert!(share.stat(OsStr::new("b")).unwrap().is_none());
        assert!(share.open(OsStr::new("b")).is_err());
        share.open(OsStr::new("a")).unwrap();
        assert_eq!(share.list().unwrap().len(), 1);
        assert!(!is_empty(&*share).unwrap());
        let work = SourceWork {
            lookups: 3,
            listings: 1,
            opens: 2,
        };
        assert_eq!(share.work(), work);

        let listing = Counted::new(Listing(Vec::new()));
        assert!(is_empty(&listing).unwrap());
        let work = SourceWork {
            lookups: 0,
            listings: 1,
            opens: 0,
        };
        assert_eq!(listing.work(), work);
    }
}
