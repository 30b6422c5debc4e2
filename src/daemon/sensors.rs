//! The sensor flow as a daemon task: a thin tokio layer around the synchronous core. Every
//! `interval` it runs one pass in a blocking task (a prediction pass, or the reconcile when
//! one is due since the last `nightly_hour` or needed: none completed, a stream not caught
//! up), then the downstream hook. The store is opened per pass only, so `status`, `log` and
//! `audit` can run in between.
//!
//! Faults of the share (unmounted, I/O errors) are logged once per change of state, retried
//! with exponential backoff, and never recorded as "missing" anything. Shutdown is a future
//! passed in: no new pass starts, the batch in flight is finished and committed, and `run`
//! returns.

use crate::bronze::{Bronze, OutageLatch};
use crate::clock::Clock;
use crate::config::Settings;
use crate::context::{Context, StreamMemory};
use crate::error::Result;
use crate::hook::{self, Hook};
use crate::identity::SourceId;
use crate::metrics::{Flow, Metrics};
use crate::naming::truncate_to_minute;
use crate::pass::{finish_probe, must_reconcile, nightly_due, probe, Discovery, PassStart, Probe};
use crate::record::PassReport;
use crate::schedule::backoff;
use crate::shipping::heartbeat::Beater;
use crate::source::{Counted, Source};
use crate::status_page::{self, Board};
use crate::store::event::HookSummary;
use crate::store::{Store, WriteLock};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the daemon is scheduled.
#[derive(Debug, Clone)]
pub struct SensorSchedule {
    pub interval: Duration,
    /// Local hour of the nightly reconcile.
    pub nightly_hour: u32,
    /// Longest wait between retries while the share or store fails.
    pub max_backoff: Duration,
    pub hook: Option<Hook>,
    /// Run passes on the async task itself instead of a blocking thread. Only for tests
    /// under paused tokio time, where a blocking thread would let the clock jump meanwhile.
    pub inline: bool,
    /// A stream with no new minute for longer than this is logged as silent (once).
    pub silence: Duration,
}

/// Everything the daemon runs with.
pub struct SensorLoop {
    pub state: PathBuf,
    pub store_wait: Duration,
    pub source: Arc<Counted<dyn Source + Send>>,
    pub bronze: Arc<dyn Bronze>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub config: SensorSchedule,
    /// What every pass is reported to (and the endpoint serves).
    pub metrics: Arc<Metrics>,
    /// The status page, rebuilt after each pass (the endpoint serves it).
    pub board: Arc<Board>,
    /// Today's files and bytes, read on from where the last page build stopped.
    today: std::sync::Mutex<status_page::LogTally>,
    memory: StreamMemory,
    stop: AtomicBool,
    /// This ingester's heartbeat for the flow, kept fresh on every tick (`heartbeat`).
    beater: Beater,
}

/// What the daemon did over its life; returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonStats {
    pub passes: u64,
    pub reconciles: u64,
    pub failed_passes: u64,
    pub copied: u64,
    pub hook_runs: u64,
    /// Streams that fell silent, and that resumed (one each per change of state).
    pub silences: u64,
    pub resumptions: u64,
}

/// One tick's result.
struct Tick {
    report: PassReport,
    hook: Option<HookSummary>,
}

impl SensorLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: PathBuf,
        store_wait: Duration,
        source: Arc<Counted<dyn Source + Send>>,
        bronze: Arc<dyn Bronze>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        config: SensorSchedule,
    ) -> Self {
        let (memory, stop) = (StreamMemory::default(), AtomicBool::new(false));
        let streams: Vec<String> = settings.streams.iter().map(|(n, _)| n.to_owned()).collect();
        let metrics = Arc::new(Metrics::new(&[Flow::Sensors], &streams));
        let board = Arc::new(Board::new(
            chrono::Duration::from_std(config.silence).unwrap_or(chrono::Duration::MAX),
            Arc::clone(&clock),
        ));
        SensorLoop {
            beater: Beater::new("sensors", config.interval),
            state,
            store_wait,
            source,
            bronze,
            clock,
            settings,
            config,
            metrics,
            board,
            today: Default::default(),
            memory,
            stop,
        }
    }

    /// Publishes its status page on `board` (shared with the endpoint).
    pub fn with_board(mut self, board: Arc<Board>) -> Self {
        self.board = board;
        self
    }

    /// Reports to `metrics` (shared with the other flows and the endpoint).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs until `shutdown` completes; returns what it did.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> DaemonStats {
        tokio::pin!(shutdown);
        let mut stats = DaemonStats::default();
        let mut health = Health::default();
        let mut delay = Duration::ZERO;
        let mut silence = crate::daemon::silence::Silence::new(self.config.silence);
        // The state gauges describe the store as it is, not only what this process did.
        if let Some(store) = Store::open_read_only(&self.state) {
            self.observe(&store);
        }
        loop {
            tokio::select! {
                // A shutdown wins over a tick that is due at the same moment.
                biased;
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(delay) => {}
            }
            let (outcome, stopping) = self.clone().tick_or_stop(&mut shutdown).await;
            delay = health.after(&outcome, &mut stats, &self.config, &self.metrics);
            for change in silence.check(&self.state, &*self.clock) {
                crate::daemon::silence::count(&change, &mut stats);
            }
            if stopping {
                break;
            }
        }
        tracing::info!(passes = stats.passes, copied = stats.copied, "stopped");
        stats
    }

    /// One tick; if `shutdown` fires meanwhile, the tick is told to stop and awaited.
    async fn tick_or_stop(
        self: Arc<Self>,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> (Result<Tick>, bool) {
        if self.config.inline {
            return (self.tick(), false);
        }
        let this = self.clone();
        let mut task = tokio::task::spawn_blocking(move || this.tick());
        // A pass that panicked met a damaged store, or a bug: say which, not "aborted".
        let join = |r: std::result::Result<Result<Tick>, tokio::task::JoinError>| {
            let state = &self.state;
            r.unwrap_or_else(|e| Err(super::unfinished(state, "the sensor pass", e)))
                .map_err(|e| crate::store::damage::classify(state, e))
        };
        tokio::select! {
            r = &mut task => (join(r), false),
            _ = shutdown.as_mut() => {
                tracing::info!("shutting down: finishing the batch in flight");
                self.stop.store(true, Ordering::Relaxed);
                (join(task.await), true)
            }
        }
    }

    /// The read-only [`probe`], when no reconcile is due and the hook has nothing to hand over.
    fn probe(&self, bronze: &dyn Bronze, start: PassStart) -> Result<Probe> {
        let Some(store) = Store::open_read_only(&self.state) else {
            return Ok(Probe::Unsure);
        };
        if nightly_due(&store, &*self.clock, self.config.nightly_hour)?
            || (self.config.hook.is_some() && hook::has_work(&store, bronze)?)
        {
            return Ok(Probe::Unsure);
        }
        probe(&self.context(&store, bronze), start)
    }

    /// A pass that failed (the share went away mid-pass) may have recorded batches before:
    /// its report is lost with the error, so its files are counted from the log.
    fn count_recorded(&self, store: &Store, first_seq: u64) {
        let mut tally = crate::record::Tally::default();
        // The share's events only (the pass holds the store, but the log says so itself).
        let read = store.for_each_event(first_seq, |_, event| {
            if event
                .kind
                .file()
                .is_some_and(|f| f.source == SourceId::Share)
            {
                tally.count(&event.kind);
            }
            Ok(())
        });
        match read {
            Ok(()) => self.metrics.files_handled(Flow::Sensors, &tally),
            Err(e) => tracing::debug!("metrics: reading the failed pass's events: {e}"),
        }
        self.observe(store);
    }

    /// The metrics' state gauges and the status page, read from `store` (a failure only
    /// costs their freshness).
    fn observe(&self, store: &Store) {
        if let Err(e) = self.metrics.observe_store(store, &*self.clock) {
            tracing::debug!("metrics: reading the store: {e}");
        }
        let streams: Vec<(String, String)> = (self.settings.streams.iter())
            .map(|(name, alias)| (name.to_owned(), alias.to_owned()))
            .collect();
        let options = status_page::Options {
            since: None,
            until: None,
            zone: self.clock.zone(),
            now_local: truncate_to_minute(self.clock.now_local()),
            now_utc: self.clock.now_utc(),
            late_after: chrono::Duration::minutes(60),
        };
        let mut today = self.today.lock().unwrap_or_else(|e| e.into_inner());
        match status_page::Page::build(store, &streams, &options, &mut today) {
            Ok(page) => self.board.publish(page),
            Err(e) => tracing::debug!("status page: reading the store: {e}"),
        }
    }

    fn context<'a>(&'a self, store: &'a Store, bronze: &'a dyn Bronze) -> Context<'a> {
        let mut ctx = Context::new(store, &*self.source, bronze, &*self.clock, &self.settings);
        ctx.ship_as_it_goes = true;
        ctx.stop = Some(&self.stop);
        ctx.memory = Some(&self.memory);
        ctx
    }

    /// One pass (reconcile if due or needed, else prediction), then the hook. Discovery runs first on a
    /// read-only store, so a caught-up share costs no write and no fsync.
    /// [`SensorLoop::pass_tick`], then the heartbeat, whatever the tick did: an idle tick or a
    /// failed pass is this ingester alive all the same.
    fn tick(&self) -> Result<Tick> {
        let tick = self.pass_tick();
        self.beater.tick(&self.state, &*self.bronze);
        tick
    }

    fn pass_tick(&self) -> Result<Tick> {
        let start = PassStart::now(&*self.source);
        // Bronze found unreachable once is not asked again in this tick (a stall costs one
        // timeout, not one per step); the next tick asks again.
        let bronze = OutageLatch::new(Arc::clone(&self.bronze));
        let probe = self.probe(&bronze, start)?;
        if let Probe::Idle(report) = probe {
            return Ok(Tick { report, hook: None });
        }
        // The write lock before the store (lock order: `store::write_lock`), for the pass only.
        let writing = WriteLock::acquire(&self.state)?;
        let store = Store::open(&self.state, self.store_wait)?;
        let first_seq = store.event_count()?;
        let ctx = self.context(&store, &bronze);
        let due =
            nightly_due(&store, &*self.clock, self.config.nightly_hour)? || must_reconcile(&ctx)?;
        let discovery = if due {
            Discovery::Reconcile
        } else {
            Discovery::Prediction
        };
        let report = finish_probe(&ctx, probe, Some(discovery), start)
            .inspect_err(|_| self.count_recorded(&store, first_seq))?;
        crate::shipping::ship_after_pass(&store, &bronze);
        self.observe(&store);
        drop(writing);
        let hook = match &self.config.hook {
            Some(h) if !ctx.stopping() => hook::run(h, &store, &bronze, &*self.clock, &self.stop)?,
            _ => None,
        };
        Ok(Tick { report, hook })
    }
}

/// Remembers the last failure so each change of state is logged once, and computes backoff.
#[derive(Debug, Default)]
struct Health {
    failing: Option<String>,
    failures: u32,
}

impl Health {
    /// Logs the outcome and returns the delay before the next tick.
    fn after(
        &mut self,
        outcome: &Result<Tick>,
        stats: &mut DaemonStats,
        cfg: &SensorSchedule,
        metrics: &Metrics,
    ) -> Duration {
        match outcome {
            Ok(tick) => {
                if let Some(was) = self.failing.take() {
                    tracing::info!(was = %was, "recovered");
                }
                self.failures = 0;
                log_tick(tick, stats, metrics);
                cfg.interval
            }
            Err(e) => {
                let msg = e.to_string();
                stats.failed_passes += 1;
                super::report::sensor_failure(metrics, e);
                self.failures = self.failures.saturating_add(1);
                let backoff = backoff(self.failures, cfg.interval, cfg.max_backoff);
                if self.failing.as_deref() != Some(msg.as_str()) {
                    tracing::warn!(retry_in_s = backoff.as_secs_f64(), "{msg}");
                    self.failing = Some(msg);
                }
                backoff.max(cfg.interval.min(cfg.max_backoff))
            }
        }
    }
}

/// Counts a pass in the daemon's stats and reports it ([`super::report`]).
fn log_tick(tick: &Tick, stats: &mut DaemonStats, metrics: &Metrics) {
    let t = &tick.report.tally;
    stats.passes += 1;
    stats.copied += t.copied;
    stats.reconciles += u64::from(tick.report.mode == "reconcile");
    stats.hook_runs += u64::from(tick.hook.is_some());
    super::report::sensor_pass(metrics, &tick.report, tick.hook.as_ref());
}

#[cfg(test)]
#[path = "sensors_tests.rs"]
mod tests;
