//! Fault injection for the model test (`fault_tests.rs`): a plan of failures at chosen calls,
//! and wrappers around the two seams that fail where the plan says — [`FaultySource`] around a
//! [`Source`], [`FaultyBronze`] around a [`Bronze`] (as redb's fault-injecting backend wraps
//! its storage trait). Test-only: nothing here is in the release build.
//!
//! A rule fires on the `nth` call (0-based) of one operation, once. Errors are real OS errors
//! (`ENOSPC`, `EACCES`, `EIO`), so messages read as they would on a full or broken disk.

use crate::bronze::{Bronze, EntryMeta, Found, StageOutcome, Staged};
use crate::identity::ContentHash;
use crate::seam::{Kind, Result, SeamError};
use crate::source::{Listed, Opened, Source, SourceMeta};
use crate::store::event::Replaced;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The operations a plan can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A metadata lookup on the source.
    Stat,
    /// A listing of the source.
    List,
    /// Opening a source file.
    Open,
    /// One read from an open source file.
    Read,
    /// One write into a Bronze temp file.
    Write,
    /// Opening a staged copy to read it back (the whole-file check of a file too large to
    /// check from memory).
    ReadStaged,
    /// The flush that makes a batch durable.
    Flush,
    /// Renaming a temp file to its final name.
    Rename,
    /// What follows a batch's publication (its events are recorded next): failing here
    /// leaves the batch published but unrecorded, as a crash between rename and commit does.
    Record,
    /// An upload (or server-side copy) into an object store.
    Put,
    /// An object's metadata lookup.
    Head,
    /// An object's download.
    Get,
    /// A listing of the bucket.
    ListKeys,
}

/// What happens at a faulty call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with this OS error number (e.g. 28 `ENOSPC`, 13 `EACCES`, 5 `EIO`).
    Errno(i32),
    /// A read returns end-of-file early, as a truncated transfer does.
    ShortRead,
    /// The call takes this long first (a slow share or disk), then succeeds.
    Slow(Duration),
    /// The call fails as on a dropped connection: a `Lost` error.
    Disconnect,
    /// The call waits until a call of this other operation is made meanwhile, then succeeds;
    /// fails with `EIO` if none comes within a minute (a bound for a failing test, not a
    /// speed limit). Proves that two operations overlap.
    AwaitCall(Op),
}

pub const ENOSPC: i32 = 28;
pub const EACCES: i32 = 13;
pub const EIO: i32 = 5;

#[derive(Debug, Clone, Copy)]
struct Rule {
    op: Op,
    nth: u64,
    fault: Fault,
}

/// Failures to inject, and what was injected so far.
#[derive(Debug, Default)]
pub struct FaultPlan {
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<HashMap<Op, u64>>,
    /// Signalled on every call (`Fault::AwaitCall`).
    called: Condvar,
    injected: AtomicU64,
}

impl FaultPlan {
    pub fn new() -> Arc<FaultPlan> {
        Arc::new(FaultPlan::default())
    }

    /// Makes the `nth` call (0-based, counted from now) of `op` fail with `fault`.
    pub fn add(&self, op: Op, nth: u64, fault: Fault) {
        let done = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let nth = nth + done.get(&op).copied().unwrap_or(0);
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.push(Rule { op, nth, fault });
    }

    /// Drops rules that have not fired.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// How many calls of `op` were made so far (counted whether or not a fault fired).
    pub fn calls(&self, op: Op) -> u64 {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.get(&op).copied().unwrap_or(0)
    }

    /// How many faults have fired.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Called before each `op`: an error to fail it with, `Ok(true)` for a short read, else
    /// `Ok(false)` (after sleeping, for a slow call).
    pub fn before(&self, op: Op) -> io::Result<bool> {
        let n = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let n = calls.entry(op).or_insert(0);
            *n += 1;
            self.called.notify_all();
            *n - 1
        };
        let fault = {
            let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            let Some(i) = rules.iter().position(|r| r.op == op && r.nth == n) else {
                return Ok(false);
            };
            rules.swap_remove(i).fault
        };
        self.injected.fetch_add(1, Ordering::Relaxed);
        match fault {
            Fault::Errno(code) => Err(io::Error::from_raw_os_error(code)),
            Fault::ShortRead => Ok(true),
            // `Lost` rides inside the `io::Error`; the seam's `From` gets it back.
            Fault::Disconnect => Err(SeamError::msg(Kind::Lost, "the connection dropped").into()),
            Fault::Slow(d) => {
                std::thread::sleep(d);
                Ok(false)
            }
            Fault::AwaitCall(other) => self.await_call(other),
        }
    }

    fn await_call(&self, other: Op) -> io::Result<bool> {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let before = calls.get(&other).copied();
        let bound = Duration::from_secs(60);
        let timed_out = (self.called)
            .wait_timeout_while(calls, bound, |c| c.get(&other).copied() == before)
            .unwrap_or_else(|e| e.into_inner())
            .1
            .timed_out();
        match timed_out {
            true => Err(io::Error::from_raw_os_error(EIO)),
            false => Ok(false),
        }
    }
}

/// A source whose calls fail as a plan says.
pub struct FaultySource<S> {
    pub inner: S,
    pub plan: Arc<FaultPlan>,
}

impl<S: Source> Source for FaultySource<S> {
    fn stat(&self, name: &OsStr) -> Result<Option<SourceMeta>> {
        self.plan.before(Op::Stat)?;
        self.inner.stat(name)
    }

    fn list(&self) -> Result<Vec<Listed>> {
        self.plan.before(Op::List)?;
        self.inner.list()
    }

    fn open(&self, name: &OsStr) -> Result<Opened> {
        self.plan.before(Op::Open)?;
        let opened = self.inner.open(name)?;
        let plan = Arc::clone(&self.plan);
        let inner = opened.reader;
        Ok(Opened {
            reader: Box::new(FaultyReader { inner, plan }),
            ..opened
        })
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
        self.inner.peek_empty()
    }
}

struct FaultyReader {
    inner: Box<dyn Read + Send>,
    plan: Arc<FaultPlan>,
}

impl Read for FaultyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.plan.before(Op::Read)? {
            return Ok(0);
        }
        self.inner.read(buf)
    }
}

/// A Bronze layer whose writes fail as a plan says: a write into a staged copy (`Write`), the
/// flush before a batch's renames (`Flush`, nothing published), one file's rename (`Rename`,
/// that file not published), and the step after publishing (`Record`: the batch is in place
/// but its outcome is reported unknown, so nothing is recorded).
pub struct FaultyBronze<B> {
    pub inner: B,
    pub plan: Arc<FaultPlan>,
}

impl<B: Bronze> Bronze for FaultyBronze<B> {
    fn stage(
        &self,
        reader: &mut dyn Read,
        before: SourceMeta,
        recheck: &mut dyn FnMut() -> Result<Option<SourceMeta>>,
        rel: &str,
    ) -> Result<StageOutcome> {
        let plan = Arc::clone(&self.plan);
        let mut writes = FailingWrites {
            inner: reader,
            plan,
        };
        self.inner.stage(&mut writes, before, recheck, rel)
    }

    fn open_staged(&self, staged: &Staged) -> Result<Box<dyn Read + Send>> {
        self.plan.before(Op::ReadStaged)?;
        self.inner.open_staged(staged)
    }

    fn discard(&self, staged: Staged) -> Result<()> {
        self.inner.discard(staged)
    }

    fn publish(&self, batch: &[Staged]) -> Result<Vec<Result<Option<Replaced>>>> {
        if let Err(e) = self.plan.before(Op::Flush) {
            batch.iter().for_each(|s| self.drop_staged(s));
            return Ok(batch.iter().map(|_| Err(copy_of(&e).into())).collect());
        }
        let renames: Vec<Option<io::Error>> = batch
            .iter()
            .map(|_| self.plan.before(Op::Rename).err())
            .collect();
        let kept: Vec<Staged> = batch
            .iter()
            .zip(&renames)
            .filter(|(_, fault)| fault.is_none())
            .map(|(s, _)| s.clone())
            .collect();
        let mut published = self.inner.publish(&kept)?.into_iter();
        let results = batch
            .iter()
            .zip(renames)
            .map(|(s, fault)| match fault {
                Some(e) => {
                    self.drop_staged(s);
                    Err(e.into())
                }
                None => published.next().expect("one result per published file"),
            })
            .collect();
        self.plan.before(Op::Record)?;
        Ok(results)
    }

    fn stat(&self, rel: &str) -> Result<Option<EntryMeta>> {
        self.inner.stat(rel)
    }

    fn hash(&self, rel: &str) -> Result<ContentHash> {
        self.inner.hash(rel)
    }

    fn walk(&self, under: &str, visit: &mut dyn FnMut(Found)) -> Result<()> {
        self.inner.walk(under, visit)
    }

    fn is_empty(&self) -> Result<bool> {
        self.inner.is_empty()
    }

    fn remove_temp(&self, rel: &str) -> Result<()> {
        self.inner.remove_temp(rel)
    }

    fn put_reserved(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        self.inner.put_reserved(rel, bytes)
    }

    fn get_reserved(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        self.inner.get_reserved(rel, limit)
    }

    fn remove_reserved(&self, rel: &str) -> Result<()> {
        self.inner.remove_reserved(rel)
    }

    fn locate(&self, rel: &str) -> String {
        self.inner.locate(rel)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl<B: Bronze> FaultyBronze<B> {
    /// A staged copy that will not be published is removed, as the writer does itself.
    fn drop_staged(&self, s: &Staged) {
        let _ = self.inner.discard(s.clone());
    }
}

fn copy_of(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// The reader handed to the inner writer: after each read that brought bytes, the write of
/// those bytes may fail (the writer then removes its temp file, as on a full disk).
struct FailingWrites<'a> {
    inner: &'a mut dyn Read,
    plan: Arc<FaultPlan>,
}

impl Read for FailingWrites<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.plan.before(Op::Write)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
#[path = "fault_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "fault_weather_tests.rs"]
mod weather_tests;
