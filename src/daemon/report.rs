//! Where every flow of the daemon reports each pass: to the log and to the [`Metrics`]. A
//! sensor or weather pass that changed something is one INFO line, an idle one DEBUG; the
//! hook's outcome follows its pass. A sensor pass that failed as a whole is logged by the
//! flow's health (once per change of state) and counted here.

use crate::error::{Error, Result};
use crate::metrics::{Flow, Metrics};
use crate::record::PassReport;
use crate::store::event::HookSummary;
use crate::weather::WeatherReport;

/// A sensor pass and the hook run after it, if any.
pub fn sensor_pass(metrics: &Metrics, r: &PassReport, hook: Option<&HookSummary>) {
    metrics.sensor_pass(r);
    let t = &r.tally;
    let busy =
        t.copied + t.adopted + t.skipped + t.failed + t.deferred > 0 || r.mode != "prediction";
    if busy {
        tracing::info!(
            mode = r.mode,
            copied = t.copied,
            skipped = t.skipped,
            failed = t.failed,
            deferred = t.deferred,
            lookups = r.work.lookups,
            listings = r.work.listings,
            ms = r.millis,
            "pass"
        );
    } else {
        tracing::debug!(lookups = r.work.lookups, ms = r.millis, "idle pass");
    }
    if let Some(h) = hook {
        hook_ran(h);
    }
}

/// The hook's outcome, after the pass it followed.
fn hook_ran(h: &HookSummary) {
    match &h.error {
        None => tracing::info!(files = h.files, ms = h.millis, "hook ran"),
        Some(e) => tracing::warn!(
            files = h.files,
            "hook failed: {e}; the same files are offered again next time"
        ),
    }
}

/// The hook run after a declared feed's pass (in a daemon without the sensors' flow), if it
/// ran, or why it could not.
pub fn feed_hook(feed: &str, outcome: &Result<Option<HookSummary>>) {
    match outcome {
        Ok(Some(h)) => hook_ran(h),
        Ok(None) => {}
        Err(e) => tracing::warn!(feed, "the hook could not run: {e}"),
    }
}

/// A sensor pass that failed as a whole.
pub fn sensor_failure(metrics: &Metrics, e: &Error) {
    metrics.pass_failed(Flow::Sensors, e);
}

/// A weather pass, or why it failed (a panic included: `daemon::unfinished`).
pub fn weather_pass(metrics: &Metrics, outcome: &Result<WeatherReport>) {
    match outcome {
        Ok(r) => metrics.weather_pass(r),
        Err(e) => metrics.pass_failed(Flow::Weather, e),
    }
    match outcome {
        Ok(r) if r.tally.copied + r.tally.failed + r.tally.skipped > 0 => {
            tracing::info!("{}", r.line())
        }
        Ok(r) => tracing::debug!("{}", r.line()),
        Err(e) => tracing::warn!("weather pass failed: {e}"),
    }
}

/// A declared feed's pass: to the log, and to the metrics as the flow named after the feed;
/// a failure only to the metrics (the feed task's health logs it, once per change of state).
pub fn feed_pass(metrics: &Metrics, feed: &str, outcome: &Result<PassReport>) {
    match outcome {
        Ok(r) => metrics.feed_pass(feed, r),
        Err(e) => metrics.pass_failed(Flow::Feed(feed.to_owned()), e),
    }
    match outcome {
        Ok(r) if r.tally.copied + r.tally.failed + r.tally.skipped + r.tally.deferred > 0 => {
            let t = &r.tally;
            tracing::info!(
                feed,
                mode = r.mode,
                copied = t.copied,
                skipped = t.skipped,
                failed = t.failed,
                deferred = t.deferred,
                listed = r.listed,
                ms = r.millis,
                "feed pass"
            )
        }
        Ok(r) => {
            let (mode, listed, ms) = (r.mode, r.listed, r.millis);
            tracing::debug!(feed, mode, listed, ms, "idle feed pass")
        }
        // Logged by the feed task's health, once per change of state.
        Err(_) => {}
    }
}
