//! `ingest replay --since T [--until T]`: recovery after an outage. For every configured stream
//! every expected minute of the window is looked up on the share, regardless of the gap limit,
//! and every file the log recorded in the window is checked in Bronze. What is missing or wrong
//! in Bronze (or never ingested, e.g. late files behind the baseline) is copied, with events.
//! The plan is a value, so `--dry-run` can print it and change nothing.

use crate::copy::copy_all;
use crate::error::{Error, Result};
use crate::identity::FileKey;
use crate::naming::{next_minute, SensorName};
use crate::pass::{summary_of, Context, PassReport, Tally};
use crate::plan::{sensor_rel, CopyJob};
use crate::source::EntryKind;
use crate::store::event::{EventKind, PassMode};
use crate::store::projection::FileRecord;
use chrono::NaiveDateTime;
use serde::Serialize;
use std::ffi::OsString;
use std::time::Instant;

/// Why a file is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Why {
    /// On the share, never ingested (late, out of order, or missed).
    NotIngested,
    /// Recorded as ingested, but not in Bronze.
    MissingInBronze,
    /// Recorded as ingested, but Bronze holds different bytes.
    BronzeDiffers,
}

/// One file to copy.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub file: String,
    pub bronze: String,
    pub why: Why,
    #[serde(skip)]
    pub job: CopyJob,
}

/// A recorded file that is wrong in Bronze and gone from the share.
#[derive(Debug, Clone, Serialize)]
pub struct Lost {
    pub file: String,
    pub bronze: String,
}

/// What a replay will do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayPlan {
    pub copy: Vec<Step>,
    pub unrecoverable: Vec<Lost>,
    /// Expected minutes × streams looked at.
    pub minutes_checked: u64,
}

/// Builds the plan for `[since, until]` (naive local minutes, inclusive).
pub fn plan(ctx: &Context, since: NaiveDateTime, until: NaiveDateTime) -> Result<ReplayPlan> {
    let mut plan = ReplayPlan::default();
    for (apartment, alias) in ctx.settings.streams.iter() {
        let mut minute = since;
        while minute <= until {
            let name = SensorName::new(minute, apartment);
            plan.minutes_checked += 1;
            check_minute(ctx, alias, &name, &mut plan)?;
            minute = next_minute(minute);
        }
    }
    Ok(plan)
}

fn check_minute(
    ctx: &Context,
    alias: &str,
    name: &SensorName,
    plan: &mut ReplayPlan,
) -> Result<()> {
    let text = name.to_string();
    let key = FileKey::share(text.clone().into_bytes());
    let record = ctx.store.file(&key)?;
    let why = match record.as_ref().filter(|r| r.state.is_ingested()) {
        Some(rec) => match bronze_state(ctx, rec) {
            None => return Ok(()),
            Some(why) => why,
        },
        None => Why::NotIngested,
    };
    let os = OsString::from(&text);
    let on_share = ctx
        .source
        .stat(&os)
        .map_err(|source| Error::ShareUnreachable {
            path: ctx.source.describe(),
            source,
        })?
        .is_some_and(|m| m.kind == EntryKind::File);
    let rel = record
        .and_then(|r| r.bronze)
        .unwrap_or_else(|| sensor_rel(alias, name));
    if on_share {
        let job = CopyJob {
            key,
            rel: rel.clone(),
        };
        plan.copy.push(Step {
            file: text,
            bronze: rel,
            why,
            job,
        });
    } else if why != Why::NotIngested {
        plan.unrecoverable.push(Lost {
            file: text,
            bronze: rel,
        });
    }
    Ok(())
}

/// `None` when Bronze holds exactly the recorded bytes. A link on the way or at the file is
/// not the recorded file: it is never hashed through, and the copy that follows refuses it.
fn bronze_state(ctx: &Context, rec: &FileRecord) -> Option<Why> {
    let rel = rec.bronze.as_deref()?;
    match ctx.bronze.hash(rel) {
        Ok(h) if Some(h) == rec.hash => None,
        Ok(_) => Some(Why::BronzeDiffers),
        Err(e) if crate::bronze::is_refused_link(&e) => Some(Why::BronzeDiffers),
        Err(_) => Some(Why::MissingInBronze),
    }
}

/// Performs a plan: copies (a differing Bronze file is kept aside by the writer) and records
/// one summary event.
pub fn apply(ctx: &Context, plan: &ReplayPlan) -> Result<PassReport> {
    let started = Instant::now();
    let before = ctx.source.counters().snapshot();
    let mut tally = Tally::default();
    crate::copy::settle_interrupted(ctx.store, ctx.bronze, ctx.clock)?;
    let jobs: Vec<CopyJob> = plan.copy.iter().map(|s| s.job.clone()).collect();
    copy_all(ctx, &jobs, &mut tally)?;
    let report = PassReport {
        mode: PassMode::Replay.name(),
        tally,
        work: ctx.source.counters().snapshot().since(before),
        listed: 0,
        millis: started.elapsed().as_millis() as u64,
    };
    ctx.record(vec![EventKind::ScanCompleted(summary_of(
        &report,
        PassMode::Replay,
    ))])?;
    Ok(report)
}
