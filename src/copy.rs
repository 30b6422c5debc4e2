//! Performing copy jobs: open on the source, stage into Bronze in parallel, publish a batch
//! with one flush, then record one event per file in one transaction. The order (durable
//! files first, events second) is what lets the log never claim a copy that is not on disk;
//! the `publishing` journal, written before a batch is published, is what lets a crash between
//! the two never leave a file in Bronze that the log does not learn about.

use crate::bronze::{facts_of, Bronze, Next};
use crate::clock::Clock;
use crate::error::Result;
use crate::identity::FileKey;
use crate::pass::{Context, Tally};
use crate::plan::CopyJob;
use crate::source::EntryKind;
use crate::store::event::{DeferReason, Event, EventKind, SkipReason};
use crate::store::{Journal, Store};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Copies all jobs, batch by batch; per-file problems become events, only store errors stop it.
/// Each batch is in the `publishing` journal before any of its files is renamed into place,
/// and leaves it in the transaction that records it (one commit per batch, as before, plus
/// one before the first batch).
pub fn copy_all(ctx: &Context, jobs: &[CopyJob], tally: &mut Tally) -> Result<()> {
    let batches: Vec<&[CopyJob]> = jobs.chunks(ctx.settings.batch_size.max(1)).collect();
    if let Some(first) = batches.first() {
        ctx.record_journaled(Vec::new(), &Journal::entering(entries(first)))?;
    }
    for (i, batch) in batches.iter().enumerate() {
        if ctx.stopping() {
            let left: usize = batches[i..].iter().map(|b| b.len()).sum();
            tracing::info!(left, "stopping: remaining copies are left for the next run");
            break;
        }
        let outcomes = parallel_map(batch, ctx.settings.copy_threads, |job| run_job(ctx, job));
        let events = publish_batch(ctx, batch, outcomes);
        for event in &events {
            tally.count(event);
        }
        // The batch's files are durable now; an injected fault here is a crash before the
        // events that claim them are committed.
        ctx.bronze
            .inject(crate::fault::Op::Record)
            .map_err(|e| crate::error::Error::io("recording a copied batch", e))?;
        let mut journal = Journal::leaving(batch.iter().map(|job| job.key.clone()).collect());
        journal.next = entries(batches.get(i + 1).copied().unwrap_or_default());
        ctx.record_journaled(events, &journal)?;
    }
    Ok(())
}

/// A batch's files and Bronze paths, for the `publishing` journal.
fn entries(batch: &[CopyJob]) -> Vec<(FileKey, String)> {
    batch
        .iter()
        .map(|job| (job.key.clone(), job.rel.clone()))
        .collect()
}

/// Settles what a crash between publishing and recording left: every file in the
/// `publishing` journal that is in Bronze but not recorded there with these bytes is hashed
/// and recorded as `Adopted`. Runs before every pass; costs one read of an empty table when
/// the last pass ended cleanly. Returns the number of files adopted.
pub fn settle_interrupted(store: &Store, bronze: &Bronze, clock: &dyn Clock) -> Result<u64> {
    let journal = store.publishing()?;
    if journal.is_empty() {
        return Ok(0);
    }
    let mut events = Vec::new();
    let mut settled = Vec::new();
    for (key, rel) in journal {
        match settle_one(store, bronze, &key, &rel)? {
            Settle::Nothing => {}
            Settle::Adopt(kind) => events.push(kind),
            // Unreadable now: stays in the journal, tried again next pass.
            Settle::Retry(error) => {
                tracing::warn!(file = %rel, %error, "cannot settle an interrupted copy yet");
                continue;
            }
        }
        settled.push(key);
    }
    let adopted = events.len() as u64;
    if adopted > 0 {
        tracing::info!(adopted, "adopted files published before a crash");
    }
    let at_ms = clock.now_utc().timestamp_millis();
    let events: Vec<Event> = events
        .into_iter()
        .map(|kind| Event { at_ms, kind })
        .collect();
    store.append_journaled(&events, &Journal::leaving(settled))?;
    Ok(adopted)
}

enum Settle {
    Nothing,
    Adopt(EventKind),
    Retry(String),
}

fn settle_one(store: &Store, bronze: &Bronze, key: &FileKey, rel: &str) -> Result<Settle> {
    match bronze.lstat(rel) {
        Ok(None) => return Ok(Settle::Nothing),
        // Not a file we published: nothing to adopt. The file's next copy refuses the link
        // and records why.
        Err(e) if crate::bronze::is_refused_link(&e) => {
            tracing::warn!(file = %rel, error = %e, "not adopting an interrupted copy");
            return Ok(Settle::Nothing);
        }
        Err(e) => return Ok(Settle::Retry(e.to_string())),
        Ok(Some(_)) => {}
    }
    let adopted = crate::adopt::adopt_one(bronze, key, rel);
    let EventKind::Adopted { hash, .. } = &adopted else {
        let error = match adopted {
            EventKind::Failed { error, .. } => error,
            _ => String::new(),
        };
        return Ok(Settle::Retry(error));
    };
    let record = store.file(key)?;
    let known = record.is_some_and(|r| {
        r.state.is_ingested() && r.hash == Some(*hash) && r.bronze.as_deref() == Some(rel)
    });
    Ok(if known {
        Settle::Nothing
    } else {
        Settle::Adopt(adopted)
    })
}

fn publish_batch(ctx: &Context, batch: &[CopyJob], outcomes: Vec<Next>) -> Vec<EventKind> {
    let mut events = Vec::with_capacity(batch.len());
    let mut staged = Vec::new();
    let mut staged_jobs = Vec::new();
    for (job, outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Next::Publish(s) => {
                staged.push(s);
                staged_jobs.push(job);
            }
            Next::Record(event) => events.push(event),
        }
    }
    let published = ctx.bronze.publish(&staged);
    for ((job, s), result) in staged_jobs.into_iter().zip(staged).zip(published) {
        let file = job.key.clone();
        events.push(match result {
            Ok(replaced) => EventKind::Copied {
                file,
                facts: s.facts,
                hash: s.hash,
                bronze: s.rel,
                replaced,
            },
            Err(e) => failed(job, Some(s.facts), "publishing into Bronze", &e),
        });
    }
    events
}

fn run_job(ctx: &Context, job: &CopyJob) -> Next {
    let file = job.key.clone();
    let name = job.name();
    let (mut reader, before) = match ctx.source.open(&name) {
        Ok(opened) => opened,
        // A share unmounted mid-pass makes every name "not found": that is an outage, recorded
        // as a failure (retried next pass), never as files that vanished.
        Err(e) if e.kind() == io::ErrorKind::NotFound && ctx.source.check().is_err() => {
            let e = io::Error::other(format!("the share went away: {e}"));
            return Next::Record(failed(job, None, "opening on the share", &e));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Next::Record(EventKind::Skipped {
                file,
                facts: None,
                reason: SkipReason::Vanished,
            })
        }
        Err(e) => return Next::Record(failed(job, None, "opening on the share", &e)),
    };
    let facts = facts_of(&before);
    if before.kind != EntryKind::File {
        let reason = SkipReason::NotRegularFile;
        return Next::Record(EventKind::Skipped {
            file,
            facts: Some(facts),
            reason,
        });
    }
    if ctx.is_young(before.mtime_ns) {
        let reason = DeferReason::TooYoung;
        return Next::Record(EventKind::Discovered {
            file,
            facts,
            reason,
        });
    }
    if before.size == 0 {
        let reason = SkipReason::Empty;
        return Next::Record(EventKind::Skipped {
            file,
            facts: Some(facts),
            reason,
        });
    }
    let recheck = || ctx.source.stat(&name);
    match ctx.bronze.stage(&mut reader, before, recheck, &job.rel) {
        Ok(outcome) => outcome.next(file),
        Err(e) => Next::Record(failed(job, Some(facts), "copying into Bronze", &e)),
    }
}

fn failed(
    job: &CopyJob,
    facts: Option<crate::store::event::Facts>,
    doing: &str,
    e: &io::Error,
) -> EventKind {
    EventKind::Failed {
        file: job.key.clone(),
        facts,
        error: format!("{doing}: {e}"),
    }
}

/// Maps `f` over `items` on up to `threads` threads, keeping the order of `items`.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = threads.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut indexed: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("copy worker panicked"))
            .collect()
    });
    indexed.sort_unstable_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}
