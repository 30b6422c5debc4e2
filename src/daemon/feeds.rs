//! A declared feed as a daemon task (`listing`): a pass at start, then one every interval
//! (each predicts or lists, as `listing::run` decides),
//! each on a blocking thread so a slow source never holds up the other flows. The feed's
//! source is made afresh for each pass (a dropped sFTP or SMB session is a new login next
//! time, not a dead task). On shutdown the pass in flight finishes its batch, records it, and
//! the task returns.

use super::shutdown::Shutdown;
use super::silence::{check_feed, feed_limit, Silence, DEFAULT_SILENCE_MINUTES};
use crate::bronze::{Bronze, OutageLatch};
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::feed::Feed;
use crate::hook::Hook;
use crate::metrics::Metrics;
use crate::record::PassReport;
use crate::shipping::heartbeat::Beater;
use crate::source::{Counted, Source};
use crate::store::damage;
use crate::store::event::HookSummary;
use crate::store::Store;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a feed's pass waits for the store while another flow of this daemon holds it.
const STORE_WAIT: Duration = Duration::from_secs(600);

/// How long the hook's runner waits for the store before leaving the hand-over to a later pass.
const HOOK_STORE_WAIT: Duration = Duration::from_secs(5);

/// Makes the feed's source with its login; the reason when it cannot (a key file missing).
pub type SourceOf =
    Box<dyn Fn() -> std::result::Result<Box<Counted<dyn Source + Send>>, String> + Send + Sync>;

/// Everything one feed's task runs with.
pub struct FeedLoop {
    pub feed: Feed,
    source: SourceOf,
    bronze: Arc<dyn Bronze>,
    state: PathBuf,
    clock: Arc<dyn Clock>,
    settings: Settings,
    interval: Duration,
    /// The longest wait after failed passes.
    max_backoff: Duration,
    /// The local hour after which the nightly listing is due.
    nightly_hour: u32,
    /// The downstream hook, given to one feed's task when the daemon has no sensors' flow
    /// (which runs it otherwise): one runner per daemon, so no file is handed over twice.
    hook: Option<Hook>,
    /// What each pass reports to (shared with the other flows and the endpoint).
    metrics: Arc<Metrics>,
    /// Whether the state gauges were read once.
    observed: AtomicBool,
    /// Which of the feed's streams are silent (a WARN when one falls silent, an INFO when it
    /// resumes).
    silence: Mutex<Silence>,
    stop: AtomicBool,
    beater: Beater,
}

impl FeedLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        feed: Feed,
        source: SourceOf,
        bronze: Arc<dyn Bronze>,
        state: PathBuf,
        clock: Arc<dyn Clock>,
        settings: Settings,
        interval: Duration,
        nightly_hour: u32,
    ) -> Self {
        let beater = Beater::new(feed.name.clone(), interval);
        let silence = Mutex::new(Silence::new(feed_limit(&feed, DEFAULT_SILENCE_MINUTES)));
        FeedLoop {
            feed,
            source,
            bronze,
            state,
            clock,
            settings,
            interval,
            max_backoff: interval,
            nightly_hour,
            hook: None,
            metrics: Arc::new(Metrics::new(&[], &[])),
            observed: AtomicBool::new(false),
            silence,
            stop: AtomicBool::new(false),
            beater,
        }
    }

    /// Reports to `metrics` (shared with the other flows and the endpoint).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Its streams are silent after `limit` without a new file.
    pub fn with_silence(self, limit: std::time::Duration) -> Self {
        *self.silence.lock().unwrap_or_else(|e| e.into_inner()) = Silence::new(limit);
        self
    }

    /// After passes that failed in a row, it waits longer, doubling up to `max` (never less
    /// than its interval).
    pub fn with_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max.max(self.interval);
        self
    }

    /// This task runs the downstream hook after its passes.
    pub fn with_hook(mut self, hook: Option<Hook>) -> Self {
        self.hook = hook;
        self
    }

    /// Runs passes until `shutdown`; a pass in flight then finishes its batch first.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let shutdown = shutdown.wait();
        tokio::pin!(shutdown);
        let mut health = Health::default();
        loop {
            let this = Arc::clone(&self);
            let mut pass = tokio::task::spawn_blocking(move || this.pass());
            let mut delay = self.interval;
            let stopping = tokio::select! {
                r = &mut pass => {
                    let outcome = self.outcome(r);
                    super::report::feed_pass(&self.metrics, &self.feed.name, &outcome);
                    delay = health.after(&self.feed.name, &outcome, self.interval, self.max_backoff);
                    false
                }
                _ = &mut shutdown => {
                    tracing::info!(feed = %self.feed.name, "shutting down, finishing the batch in flight");
                    self.stop.store(true, Ordering::Relaxed);
                    let outcome = self.outcome(pass.await);
                    super::report::feed_pass(&self.metrics, &self.feed.name, &outcome);
                    if let Err(e) = &outcome {
                        tracing::warn!(feed = %self.feed.name, "the last feed pass failed: {e}");
                    }
                    true
                }
            };
            if stopping {
                return;
            }
            tokio::select! {
                biased;
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// What a pass's task returned; a panic is a bug (or damage), reported like any failure.
    fn outcome(
        &self,
        r: std::result::Result<Result<PassReport>, tokio::task::JoinError>,
    ) -> Result<PassReport> {
        r.unwrap_or_else(|e| Err(super::unfinished(&self.state, "a feed's pass", e)))
    }

    /// One pass; a damaged store is a logged failure, not a dead task.
    fn pass(&self) -> Result<PassReport> {
        // Bronze found unreachable once is not asked again by this pass.
        let bronze = OutageLatch::new(Arc::clone(&self.bronze));
        let report = damage::guard(&self.state, || {
            let source = (self.source)().map_err(Error::Config)?;
            crate::listing::run(
                &self.feed,
                &*source,
                &bronze,
                &*self.clock,
                &self.settings,
                &self.state,
                STORE_WAIT,
                crate::listing::Schedule {
                    nightly_hour: self.nightly_hour,
                    always: false,
                },
                Some(&self.stop),
            )
        });
        crate::shipping::ship_store(&self.state, STORE_WAIT, &bronze);
        self.observe(&report);
        let mut silence = self.silence.lock().unwrap_or_else(|e| e.into_inner());
        check_feed(&mut silence, &self.state, &self.feed, &*self.clock);
        drop(silence);
        if let Some(hook) = &self.hook {
            let outcome = self.hand_over(hook, &bronze);
            super::report::feed_hook(&self.feed.name, &outcome);
        }
        self.beater.tick(&self.state, &bronze);
        report
    }

    /// The feed's state gauges, read again after a pass that changed something, or while they
    /// were never read (the store busy at the first try): the presence rows are not read for an
    /// idle pass. The store's own gauges (log, size) too, for a daemon without the sensors'
    /// flow, which reads them otherwise.
    fn observe(&self, report: &Result<PassReport>) {
        let t = report.as_ref().map(|r| r.tally.clone()).unwrap_or_default();
        let changed = t.copied + t.adopted + t.skipped + t.failed + t.deferred > 0;
        if !changed && self.observed.load(Ordering::Relaxed) {
            return;
        }
        let Some(store) = Store::open_read_only(&self.state) else {
            return;
        };
        let observed = self
            .metrics
            .observe_feed(&store, &self.feed, &*self.clock)
            .and_then(|()| self.metrics.observe_log(&store));
        match observed {
            Ok(()) => self.observed.store(true, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(feed = %self.feed.name, "reading the feed's state for the metrics: {e}")
            }
        }
    }

    /// Hands what was copied since the hook last succeeded to it (the feeds' files and any
    /// other flow's); asks a read-only store first, so an idle pass opens nothing for writing.
    /// A store another process holds (an `audit`, a `replay`) is not waited for: the files
    /// are handed over after a later pass, and the task stays free to stop.
    fn hand_over(&self, hook: &Hook, bronze: &dyn Bronze) -> Result<Option<HookSummary>> {
        let pending = match Store::open_read_only(&self.state) {
            Some(store) => crate::hook::has_work(&store, bronze)?,
            None => false,
        };
        if !pending || self.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let store = match Store::open(&self.state, HOOK_STORE_WAIT) {
            Err(Error::StoreLocked { .. }) => return Ok(None),
            store => store?,
        };
        crate::hook::run(hook, &store, bronze, &*self.clock, &self.stop)
    }
}

/// A feed task's health: its last failure, so each change of state is logged once (a share
/// that stays down is one WARN, not one a pass), and how many passes in a row failed, for the
/// backoff.
#[derive(Debug, Default)]
struct Health {
    /// The kind of the failure said last (messages carry counts and names that change from
    /// pass to pass; the kind is the state).
    failing: Option<&'static str>,
    failures: u32,
}

impl Health {
    /// Logs a change of state and returns the wait before the next pass.
    fn after(
        &mut self,
        feed: &str,
        outcome: &Result<PassReport>,
        interval: Duration,
        max_backoff: Duration,
    ) -> Duration {
        match outcome {
            Ok(_) => {
                if let Some(was) = self.failing.take() {
                    tracing::info!(feed, was, "feed recovered");
                }
                self.failures = 0;
                interval
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let wait = crate::schedule::backoff(self.failures, interval, max_backoff);
                let wait = wait.max(interval.min(max_backoff));
                if self.failing != Some(e.kind()) {
                    tracing::warn!(
                        feed,
                        retry_in_s = wait.as_secs_f64(),
                        "feed pass failed: {e}"
                    );
                    self.failing = Some(e.kind());
                }
                wait
            }
        }
    }
}
