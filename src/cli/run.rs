//! `ingest run`: one pass of every configured flow (`--once`), a reconcile now (`--scan`), or
//! the daemon ([`crate::daemon`]): the sensor flow (a prediction pass every interval, a
//! reconcile once a night) and the weather flow (at start, then hourly) under one shutdown.

use super::{escaped, report, seconds, Resolved};
use crate::bronze::{Bronze, OutageLatch};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::context::Context;
use crate::daemon::silence::feed_limit;
use crate::daemon::{self, FeedLoop, Flows, SensorLoop, SensorSchedule, StopOn, WeatherLoop};
use crate::error::{Error, Result};
use crate::hook::{check_root, manifest_for, Hook};
use crate::metrics::{Flow, Metrics};
use crate::pass::Discovery;
use crate::pass::{finish_probe, nightly_due, probe, PassStart, Probe};
use crate::record::PassReport;
use crate::shipping::heartbeat;
use crate::source::sftp::SftpSettings;
use crate::source::{Counted, Source};
use crate::status_page::Board;
use crate::store::event::EventKind;
use crate::store::{Store, WriteLock};
use crate::weather::{self, WeatherReport};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// One pass and exit: a reconcile when one is due (none completed yet, none since the
    /// last --nightly-hour, or a stream not caught up for an hour), else a prediction pass.
    #[arg(long)]
    pub once: bool,
    /// A full reconcile now, then exit (with or without --once).
    #[arg(long)]
    pub scan: bool,
    /// Accept a reconcile listing smaller than half the last one (files removed from the
    /// share on purpose); without it such a listing is taken for a lost share (exit 2).
    #[arg(long)]
    pub accept_shrunk_share: bool,
    /// Print the pass summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Files copied in parallel.
    #[arg(long, env = "INGEST_COPY_THREADS", default_value_t = 16)]
    pub copy_threads: usize,
    /// Consecutive missing minutes after which prediction stops walking a stream.
    #[arg(long, env = "INGEST_GAP_MINUTES", default_value_t = 10)]
    pub gap_minutes: u32,
    /// Files modified more recently than this are left for the next pass.
    #[arg(long, env = "INGEST_MIN_AGE_SECS", default_value_t = 2)]
    pub min_age_secs: u32,
    /// A sensor file that is not yet a whole JSON document is deferred for this long after
    /// its last modification, then recorded as failed (later passes still retry it).
    #[arg(long, env = "INGEST_INCOMPLETE_SECS", default_value_t = 600)]
    pub incomplete_secs: u32,
    /// Files per durable batch (one flush and one transaction each).
    #[arg(long, env = "INGEST_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// Seconds between prediction passes when running continuously.
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 60.0)]
    pub interval_secs: f64,
    /// Longest wait between retries while the share or the store fails.
    #[arg(long, env = "INGEST_MAX_BACKOFF_SECS", default_value_t = 300.0)]
    pub max_backoff_secs: f64,
    /// Command run after a pass that ingested files; it gets the new Bronze paths in a
    /// manifest file named by $INGEST_MANIFEST (one per line, UTF-8) and their count in
    /// $INGEST_NEW_COUNT. A Bronze root that is not valid Unicode or holds a line break is
    /// refused with it (exit 2).
    #[arg(long, env = "INGEST_ON_NEW")]
    pub on_new: Option<String>,
    /// Seconds the hook may run before it is killed (its files are offered again).
    #[arg(
        long = "hook-timeout",
        env = "INGEST_HOOK_TIMEOUT_SECS",
        default_value_t = 300.0
    )]
    pub hook_timeout_secs: f64,
    /// Seconds between weather passes when running continuously (one also runs at start).
    #[arg(long, env = "WEATHER_INTERVAL_SECS", default_value_t = 3600)]
    pub weather_interval_secs: u64,
    /// Further attempts after a weather pass fails on a transient error (server down, dropped
    /// connection); login and host-key failures are never retried.
    #[arg(long, env = "SFTP_RETRIES", default_value_t = 3)]
    pub sftp_retries: u32,
    /// Seconds before the first weather retry; doubled for each further one.
    #[arg(long, env = "SFTP_RETRY_SECS", default_value_t = 5)]
    pub sftp_retry_secs: u64,
    /// Local hour of the nightly reconcile.
    #[arg(long, env = "NIGHTLY_HOUR", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..24))]
    pub nightly_hour: u32,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this address while the
    /// daemon runs, e.g. 127.0.0.1:9464 (port 0: any free port, logged at start). Off by
    /// default; ignored by --once and --scan.
    #[arg(long, env = "INGEST_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Minutes without a new file after which a stream is logged as silent (once; an info
    /// line follows when it resumes).
    #[arg(long, env = "INGEST_SILENCE_MINUTES", default_value_t = crate::daemon::silence::DEFAULT_SILENCE_MINUTES, value_parser = clap::value_parser!(u32).range(1..=525_600))]
    pub silence_minutes: u32,
}

impl RunArgs {
    /// The options the config file's `[run]` table takes, as `config show` prints them
    /// (TOML values; `None`: not set).
    pub fn shown(&self) -> Vec<(&'static str, Option<String>)> {
        let some = |v: String| Some(v);
        vec![
            ("copy_threads", some(self.copy_threads.to_string())),
            ("gap_minutes", some(self.gap_minutes.to_string())),
            ("min_age_secs", some(self.min_age_secs.to_string())),
            ("incomplete_secs", some(self.incomplete_secs.to_string())),
            ("batch_size", some(self.batch_size.to_string())),
            ("interval_secs", some(self.interval_secs.to_string())),
            ("max_backoff_secs", some(self.max_backoff_secs.to_string())),
            ("on_new", self.on_new.as_ref().map(|v| format!("{v:?}"))),
            (
                "hook_timeout_secs",
                some(self.hook_timeout_secs.to_string()),
            ),
            (
                "weather_interval_secs",
                some(self.weather_interval_secs.to_string()),
            ),
            ("sftp_retries", some(self.sftp_retries.to_string())),
            ("sftp_retry_secs", some(self.sftp_retry_secs.to_string())),
            ("nightly_hour", some(self.nightly_hour.to_string())),
            (
                "metrics_addr",
                self.metrics_addr.map(|a| format!("\"{a}\"")),
            ),
            ("silence_minutes", some(self.silence_minutes.to_string())),
        ]
    }
}

/// `ingest run` from the command line.
pub fn run(cfg: &Resolved, args: &RunArgs) -> Result<ExitCode> {
    run_until(cfg, args, StopOn::Console)
}

/// `ingest run`, with the daemon stopped by `stop_on`.
pub fn run_until(cfg: &Resolved, args: &RunArgs, stop_on: StopOn) -> Result<ExitCode> {
    if cfg.smb_path.is_none() && cfg.weather.is_none() && cfg.listed_feeds.is_empty() {
        return Err(Error::Config(
            "nothing to ingest: no share (--smb-path, SMB_PATH, smb_path in the config file or \
             a [[feed]] there) and no weather server (--sftp-host, SFTP_HOST, sftp_host in the \
             config file or a [[feed]] there)"
                .into(),
        ));
    }
    let timing = Timing::of(args)?;
    if args.on_new.is_some() {
        check_root(&cfg.bronze_root)?;
    }
    let bronze = cfg.bronze()?;
    let settings = settings_of(cfg, args);
    // Another live ingester of the same feeds into this Bronze: refused before any pass.
    let now = chrono::Utc::now().timestamp_millis();
    if args.once || args.scan {
        // One pass: Bronze found unreachable once is not asked again (see `OutageLatch`), the
        // heartbeats' listing included, so a stalled store costs the run one request.
        let bronze = OutageLatch::new(bronze);
        heartbeat::refuse_if_served(&bronze, &cfg.state, &flows_of(cfg), now)?;
        beat(cfg, args, &bronze);
        let code = run_once(cfg, args, &bronze, &settings)?;
        return match hook_of(cfg, args, &timing) {
            Some(hook) => run_hook_once(cfg, &hook, &bronze, code),
            None => Ok(code),
        };
    }
    let latched = OutageLatch::new(Arc::clone(&bronze));
    heartbeat::refuse_if_served(&latched, &cfg.state, &flows_of(cfg), now)?;
    beat(cfg, args, &latched);
    let metrics = metrics_of(cfg);
    let silence = chrono::Duration::minutes(i64::from(args.silence_minutes));
    let board = Arc::new(Board::new(silence, Arc::new(SystemClock)));
    let flows = Flows {
        sensors: cfg.share()?.map(|share| {
            let share = Arc::from(share);
            let sensors = sensor_loop(cfg, args, &timing, share, Arc::clone(&bronze), &settings);
            let sensors = sensors.with_metrics(Arc::clone(&metrics));
            Arc::new(sensors.with_board(Arc::clone(&board)))
        }),
        weather: cfg.weather.clone().map(|sftp| {
            let weather = weather_loop(cfg, args, sftp, Arc::clone(&bronze), &settings);
            Arc::new(weather.with_metrics(Arc::clone(&metrics)))
        }),
        feeds: (cfg.listed_feeds.iter().enumerate())
            .map(|(i, declared)| {
                let feed = feed_loop(cfg, args, declared, &bronze, &settings);
                // The hook has one runner: the sensors' flow, else the first feed's task.
                let runs_hook = i == 0 && cfg.smb_path.is_none();
                let feed = feed.with_hook(hook_of(cfg, args, &timing).filter(|_| runs_hook));
                let limit = feed_limit(&declared.feed, args.silence_minutes);
                let feed = feed.with_silence(limit).with_backoff(timing.max_backoff);
                Arc::new(feed.with_metrics(Arc::clone(&metrics)))
            })
            .collect(),
        metrics,
        board,
    };
    daemon::serve(&cfg.state, flows, stop_on, args.metrics_addr)?;
    Ok(ExitCode::SUCCESS)
}

/// Checks `run`'s options as a run would before starting (durations, the hook's Bronze root):
/// `config check` refuses what `run` would refuse.
pub(super) fn check_options(cfg: &Resolved, args: &RunArgs) -> Result<()> {
    Timing::of(args)?;
    if args.on_new.is_some() {
        check_root(&cfg.bronze_root)?;
    }
    Ok(())
}

/// The metrics every configured flow of the daemon reports to.
fn metrics_of(cfg: &Resolved) -> Arc<Metrics> {
    let feeds: BTreeMap<String, Vec<String>> = (cfg.listed_feeds.iter())
        .map(|d| {
            let streams = d.feed.streams.pairs().into_iter().map(|(s, _)| s);
            (d.feed.name.clone(), streams.collect())
        })
        .collect();
    let flows: Vec<Flow> = [
        cfg.smb_path.as_ref().map(|_| Flow::Sensors),
        cfg.weather.as_ref().map(|_| Flow::Weather),
    ]
    .into_iter()
    .flatten()
    .chain(feeds.keys().map(|name| Flow::Feed(name.clone())))
    .collect();
    let streams: Vec<String> = cfg.streams.iter().map(|(n, _)| n.to_owned()).collect();
    Arc::new(Metrics::with_feeds(&flows, &streams, feeds))
}

/// One line on what failed in a pass (its events start at `first_seq`): the count and the
/// first failure's file and error, so exit 1 never comes without a cause on stderr.
fn failure_line(store: &Store, first_seq: u64, failed: u64) -> Result<String> {
    let mut first = None;
    store.for_each_event(first_seq, |_, event| {
        if let (None, EventKind::Failed { file, error, .. }) = (&first, &event.kind) {
            first = Some(format!("{}: {}", file.display_name(), error));
        }
        Ok(())
    })?;
    let first = first.map_or_else(String::new, |f| format!("; first: {}", escaped(&f)));
    Ok(format!(
        "{failed} file(s) failed in this pass{first} (all of them: `ingest log`)"
    ))
}

/// The durations of `run`, checked: a value that is not a sane number of seconds is refused
/// with exit 2 naming its option (`inf` or `1e20` do not fit a `Duration`; an interval of 0
/// or less would be a busy loop).
struct Timing {
    interval: Duration,
    max_backoff: Duration,
    hook_timeout: Duration,
}

impl Timing {
    fn of(args: &RunArgs) -> Result<Timing> {
        let interval = seconds("--interval-secs (INTERVAL_SECS)", args.interval_secs, 0.05)?;
        let max_backoff = seconds(
            "--max-backoff-secs (INGEST_MAX_BACKOFF_SECS)",
            args.max_backoff_secs,
            0.0,
        )?;
        let hook_timeout = seconds(
            "--hook-timeout (INGEST_HOOK_TIMEOUT_SECS)",
            args.hook_timeout_secs,
            0.1,
        )?;
        Ok(Timing {
            interval,
            // Retries never come faster than passes.
            max_backoff: max_backoff.max(interval),
            hook_timeout,
        })
    }
}

/// The `--on-new` hook, its manifest beside the store and named after it.
fn hook_of(cfg: &Resolved, args: &RunArgs, timing: &Timing) -> Option<Hook> {
    args.on_new.clone().map(|command| Hook {
        command,
        timeout: timing.hook_timeout,
        manifest: manifest_for(&cfg.state),
    })
}

/// `--once --on-new`: after the pass, the hook gets what was copied since it last succeeded
/// (this pass's files, and any an earlier failed run left). A failed hook makes the exit code
/// at least 1, with its cause on stderr; its files are offered again next time.
fn run_hook_once(
    cfg: &Resolved,
    hook: &Hook,
    bronze: &dyn Bronze,
    code: ExitCode,
) -> Result<ExitCode> {
    let store = Store::open(&cfg.state, cfg.store_wait)?;
    let never = AtomicBool::new(false);
    match crate::hook::run(hook, &store, bronze, &SystemClock, &never)? {
        Some(summary) if !summary.ok => {
            let why = summary.error.as_deref().unwrap_or("failed");
            eprintln!(
                "ingest: the --on-new hook failed ({why}); its {} files are offered again next time",
                summary.files
            );
            Ok(ExitCode::from(1))
        }
        _ => Ok(code),
    }
}

/// Every configured flow once: the sensor pass, then the weather pass. One flow failing never
/// keeps the other from running; the exit code is the worst of both (2 if either could not
/// run, with every cause on stderr).
fn run_once(
    cfg: &Resolved,
    args: &RunArgs,
    bronze: &dyn Bronze,
    settings: &Settings,
) -> Result<ExitCode> {
    let sensors = cfg.share()?.map(|source| {
        let source = &*source;
        // Before the store is opened (and created): a mistyped share path leaves no store.
        source
            .check()
            .map_err(|e| Error::unreachable(source.describe(), e))?;
        let start = PassStart::now(source);
        let nightly = |store: &Store| nightly_due(store, &SystemClock, args.nightly_hour);
        let probe = match Store::open_read_only(&cfg.state).filter(|_| !args.scan) {
            Some(store) if !nightly(&store)? => probe(
                &Context::new(&store, source, bronze, &SystemClock, settings),
                start,
            )?,
            _ => Probe::Unsure,
        };
        if let Probe::Idle(report) = probe {
            return Ok(report);
        }
        // The write lock before the store (lock order: `store::write_lock`).
        let _writing = WriteLock::acquire(&cfg.state)?;
        let store = Store::open(&cfg.state, cfg.store_wait)?;
        let first_seq = store.event_count()?;
        // Scheduled `run --once` (cron, Task Scheduler) reconciles nightly like the daemon,
        // so files only a listing finds (late, come back after vanishing) are not left out.
        let discovery = (args.scan || nightly(&store)?).then_some(Discovery::Reconcile);
        let mut ctx = Context::new(&store, source, bronze, &SystemClock, settings);
        ctx.ship_as_it_goes = true;
        let report = finish_probe(&ctx, probe, discovery, start)?;
        if report.tally.failed > 0 {
            eprintln!(
                "ingest: {}",
                failure_line(&store, first_seq, report.tally.failed)?
            );
        }
        Ok(report)
    });
    let weather = cfg.weather.as_ref().map(|sftp| {
        let flow = weather_flow(cfg, sftp, bronze, settings, cfg.store_wait);
        weather::run_with_retries(&flow, retry_of(args))
    });
    let feeds: Vec<(&str, Result<PassReport>)> = (cfg.listed_feeds.iter())
        .map(|declared| {
            let report = listing_pass(cfg, declared, bronze, settings, args);
            (declared.feed.name.as_str(), report)
        })
        .collect();
    // The log into Bronze after both flows recorded (`shipping`; a failure is a warning), and
    // this ingester's heartbeat for each flow (fresh for three of the daemon's intervals).
    crate::shipping::ship_store(&cfg.state, cfg.store_wait, bronze);
    beat(cfg, args, bronze);
    let sensor_report = sensors.as_ref().and_then(|r| r.as_ref().ok());
    let weather_report = weather.as_ref().and_then(|r| r.as_ref().ok());
    let feed_reports: BTreeMap<&str, &PassReport> = (feeds.iter())
        .filter_map(|(name, r)| Some((*name, r.as_ref().ok()?)))
        .collect();
    print_reports(sensor_report, weather_report, &feed_reports, args.json);
    let failed = sensor_report.is_some_and(|r| r.tally.failed > 0)
        || weather_report.is_some_and(|r| r.tally.failed > 0)
        || feed_reports.values().any(|r| r.tally.failed > 0);
    let sensor_error = sensors.and_then(|r| r.err());
    let weather_error = weather.and_then(|r| r.err());
    let feed_errors =
        (feeds.into_iter()).filter_map(|(name, r)| Some(Error::in_feed(name, r.err()?)));
    let mut errors: Vec<Error> = [sensor_error, weather_error]
        .into_iter()
        .flatten()
        .chain(feed_errors)
        .collect();
    match errors.pop() {
        Some(last) => {
            for e in errors {
                eprintln!("ingest: {e}");
            }
            Err(last)
        }
        None if failed => Ok(ExitCode::from(1)),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// One pass of a feed the seed's flows do not run (`listing`: prediction, or a listing of its
/// source), with the feed's own login.
fn listing_pass(
    cfg: &Resolved,
    declared: &crate::feed::table::Declared,
    bronze: &dyn Bronze,
    settings: &Settings,
    args: &RunArgs,
) -> Result<PassReport> {
    let source = cfg.feed_source(declared).map_err(Error::Config)?;
    let schedule = crate::listing::Schedule {
        nightly_hour: args.nightly_hour,
        always: args.scan,
    };
    crate::listing::run(
        &declared.feed,
        &*source,
        bronze,
        &SystemClock,
        settings,
        &cfg.state,
        cfg.store_wait,
        schedule,
        None,
    )
}

/// This ingester's heartbeat for each flow it runs, when its store has an id: at start (so a
/// long first pass is known to be alive, refreshed as it ships mid-pass) and at the end of a
/// `run --once` (written again only when a third of its freshness passed).
fn beat(cfg: &Resolved, args: &RunArgs, bronze: &dyn Bronze) {
    let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(60));
    for feed in flows_of(cfg) {
        let every = match feed {
            "weather" => Duration::from_secs(args.weather_interval_secs.max(1)),
            _ => secs(args.interval_secs),
        };
        heartbeat::beat_after_pass_at(&cfg.state, bronze, feed, every);
    }
}

/// The flows this configuration runs, by the names their heartbeats carry: the seed's two and
/// each declared feed's own name.
fn flows_of(cfg: &Resolved) -> Vec<&str> {
    let sensors = cfg.smb_path.is_some().then_some("sensors");
    let weather = cfg.weather.is_some().then_some("weather");
    let feeds = cfg.listed_feeds.iter().map(|d| d.feed.name.as_str());
    sensors.into_iter().chain(weather).chain(feeds).collect()
}

fn weather_flow<'a>(
    cfg: &'a Resolved,
    sftp: &'a SftpSettings,
    bronze: &'a dyn Bronze,
    settings: &Settings,
    store_wait: Duration,
) -> weather::WeatherContext<'a> {
    weather::WeatherContext {
        sftp,
        bronze,
        state: &cfg.state,
        store_wait,
        clock: &SystemClock,
        min_age: settings.min_age,
        batch_size: settings.batch_size,
        stop: None,
    }
}

fn retry_of(args: &RunArgs) -> weather::Retry {
    weather::Retry {
        retries: args.sftp_retries,
        base: Duration::from_secs(args.sftp_retry_secs.max(1)),
        cap: Duration::from_secs(args.weather_interval_secs.max(1)),
    }
}

/// The weather flow's daemon task: a pass at start, then one every interval.
fn weather_loop(
    cfg: &Resolved,
    args: &RunArgs,
    sftp: SftpSettings,
    bronze: Arc<dyn Bronze>,
    settings: &Settings,
) -> WeatherLoop {
    WeatherLoop::new(
        sftp,
        bronze,
        cfg.state.clone(),
        Arc::new(SystemClock),
        settings.min_age,
        settings.batch_size,
        retry_of(args),
        Duration::from_secs(args.weather_interval_secs.max(1)),
    )
}

fn settings_of(cfg: &Resolved, args: &RunArgs) -> Settings {
    let mut s = Settings::new(cfg.streams.clone());
    s.copy_threads = args.copy_threads.max(1);
    s.gap_minutes = args.gap_minutes.max(1);
    s.min_age = chrono::Duration::seconds(i64::from(args.min_age_secs));
    s.incomplete_grace = chrono::Duration::seconds(i64::from(args.incomplete_secs));
    s.batch_size = args.batch_size.max(1);
    s.accept_shrunk_share = args.accept_shrunk_share;
    s
}

/// A declared feed's daemon task: a pass every `--interval-secs` (prediction, listing
/// nightly), with the feed's own login made afresh for each pass.
fn feed_loop(
    cfg: &Resolved,
    args: &RunArgs,
    declared: &crate::feed::table::Declared,
    bronze: &Arc<dyn Bronze>,
    settings: &Settings,
) -> FeedLoop {
    let (resolved, owned) = (cfg.clone(), declared.clone());
    let interval =
        Duration::try_from_secs_f64(args.interval_secs).unwrap_or(Duration::from_secs(60));
    FeedLoop::new(
        declared.feed.clone(),
        Box::new(move || resolved.feed_source(&owned)),
        Arc::clone(bronze),
        cfg.state.clone(),
        Arc::new(SystemClock),
        settings.clone(),
        interval,
        args.nightly_hour,
    )
}

/// The sensor flow's daemon task over the share.
fn sensor_loop(
    cfg: &Resolved,
    args: &RunArgs,
    timing: &Timing,
    share: Arc<Counted<dyn Source + Send>>,
    bronze: Arc<dyn Bronze>,
    settings: &Settings,
) -> SensorLoop {
    let schedule = SensorSchedule {
        interval: timing.interval,
        nightly_hour: args.nightly_hour,
        max_backoff: timing.max_backoff,
        hook: hook_of(cfg, args, timing),
        inline: false,
        silence: Duration::from_secs(u64::from(args.silence_minutes) * 60),
    };
    SensorLoop::new(
        cfg.state.clone(),
        cfg.store_wait,
        share,
        bronze,
        Arc::new(SystemClock),
        settings.clone(),
        schedule,
    )
}

/// What `run --once --json` prints: the sensor pass's fields, plus `weather` when configured.
#[derive(Serialize)]
struct OnceReport<'a> {
    #[serde(flatten)]
    sensors: Option<&'a PassReport>,
    /// Each feed run by listing, by name; absent when none is declared.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    feeds: BTreeMap<&'a str, &'a PassReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weather: Option<&'a WeatherReport>,
}

/// One JSON object on stdout, or one human line per flow.
fn print_reports(
    sensors: Option<&PassReport>,
    weather: Option<&WeatherReport>,
    feeds: &BTreeMap<&str, &PassReport>,
    json: bool,
) {
    if json {
        if sensors.is_some() || weather.is_some() || !feeds.is_empty() {
            let once = OnceReport {
                sensors,
                weather,
                feeds: feeds.clone(),
            };
            println!("{}", report::json(&once));
        }
        return;
    }
    if let Some(r) = sensors {
        println!("{}", human(r));
    }
    if let Some(w) = weather {
        println!("{}", w.line());
    }
    for (name, r) in feeds {
        println!("feed `{name}` {}", human(r));
    }
}

fn human(r: &PassReport) -> String {
    let t = &r.tally;
    format!(
        "{}: copied {}, adopted {}, skipped {}, failed {}, deferred {} ({} bytes; {} lookups, {} listings, {} listed) in {} ms",
        r.mode, t.copied, t.adopted, t.skipped, t.failed, t.deferred, t.bytes, r.work.lookups, r.work.listings, r.listed, r.millis
    )
}
