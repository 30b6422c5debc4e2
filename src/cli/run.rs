//! `ingest run`: one pass of every configured flow (`--once`), a reconcile now (`--scan`), or a
//! simple loop that runs a prediction pass every interval and a reconcile once a night, with
//! the weather flow on its own thread and schedule (at start, then hourly).

use super::Resolved;
use crate::bronze::Bronze;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::pass::{run_pass, Context, PassReport};
use crate::schedule::reconcile_due;
use crate::sftp::SftpSettings;
use crate::source::DirSource;
use crate::store::event::PassMode;
use crate::store::projection::META_LAST_RECONCILE;
use crate::store::Store;
use crate::weather::{self, WeatherReport};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// One pass and exit: a reconcile until one has completed, else a prediction pass.
    #[arg(long)]
    pub once: bool,
    /// A full reconcile now, then exit (with or without --once).
    #[arg(long)]
    pub scan: bool,
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
    /// Files per durable batch (one flush and one transaction each).
    #[arg(long, env = "INGEST_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// Seconds between prediction passes when running continuously.
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 60)]
    pub interval_secs: u64,
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
}

pub fn run(cfg: &Resolved, args: &RunArgs) -> Result<ExitCode> {
    if cfg.smb_path.is_none() && cfg.weather.is_none() {
        return Err(Error::Config(
            "no share configured (--smb-path or SMB_PATH) and no weather server (--sftp-host or SFTP_HOST)".into(),
        ));
    }
    let bronze = Bronze::new(&cfg.bronze_root);
    let settings = settings_of(cfg, args);
    if args.once || args.scan {
        return run_once(cfg, args, &bronze, &settings);
    }
    if let Some(sftp) = cfg.weather.clone() {
        let (cfg, args, bronze, settings) =
            (cfg.clone(), args.clone(), bronze.clone(), settings.clone());
        std::thread::Builder::new()
            .name("weather".into())
            .spawn(move || weather_forever(&cfg, &args, &sftp, &bronze, &settings))
            .map_err(|e| Error::io("starting the weather thread", e))?;
    }
    match &cfg.smb_path {
        Some(share) => run_forever(cfg, args, &DirSource::new(share), &bronze, &settings),
        None => loop {
            std::thread::park();
        },
    }
}

/// Every configured flow once: the sensor pass, then the weather pass. One flow failing never
/// keeps the other from running; the exit code is the worst of both (2 if either could not
/// run, with every cause on stderr).
fn run_once(
    cfg: &Resolved,
    args: &RunArgs,
    bronze: &Bronze,
    settings: &Settings,
) -> Result<ExitCode> {
    let sensors = cfg.smb_path.as_ref().map(|share| {
        let source = DirSource::new(share);
        let store = Store::open(&cfg.state, cfg.store_wait)?;
        let ctx = Context {
            store: &store,
            source: &source,
            bronze,
            clock: &SystemClock,
            settings,
        };
        run_pass(&ctx, args.scan.then_some(PassMode::Reconcile))
    });
    let weather = cfg.weather.as_ref().map(|sftp| {
        let flow = weather_flow(cfg, sftp, bronze, settings, cfg.store_wait);
        weather::run_with_retries(&flow, retry_of(args))
    });
    let sensor_report = sensors.as_ref().and_then(|r| r.as_ref().ok());
    let weather_report = weather.as_ref().and_then(|r| r.as_ref().ok());
    print_reports(sensor_report, weather_report, args.json);
    let failed = sensor_report.is_some_and(|r| r.tally.failed > 0)
        || weather_report.is_some_and(|r| r.tally.failed > 0);
    let sensor_error = sensors.and_then(|r| r.err());
    let weather_error = weather.and_then(|r| r.err());
    let mut errors: Vec<Error> = [sensor_error, weather_error]
        .into_iter()
        .flatten()
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

fn weather_flow<'a>(
    cfg: &'a Resolved,
    sftp: &'a SftpSettings,
    bronze: &'a Bronze,
    settings: &Settings,
    store_wait: Duration,
) -> weather::Flow<'a> {
    weather::Flow {
        sftp,
        bronze,
        state: &cfg.state,
        store_wait,
        clock: &SystemClock,
        min_age: settings.min_age,
        batch_size: settings.batch_size,
    }
}

fn retry_of(args: &RunArgs) -> weather::Retry {
    weather::Retry {
        retries: args.sftp_retries,
        base: Duration::from_secs(args.sftp_retry_secs.max(1)),
        cap: Duration::from_secs(args.weather_interval_secs.max(1)),
    }
}

/// The weather schedule of the daemon: a pass at start, then one every interval, on its own
/// thread so a slow or unreachable server never delays the sensor flow. It waits long for
/// the store, because what holds it is this daemon's own sensor pass.
fn weather_forever(
    cfg: &Resolved,
    args: &RunArgs,
    sftp: &SftpSettings,
    bronze: &Bronze,
    settings: &Settings,
) {
    let flow = weather_flow(cfg, sftp, bronze, settings, WEATHER_STORE_WAIT);
    loop {
        match weather::run_with_retries(&flow, retry_of(args)) {
            Ok(r) if r.tally.copied + r.tally.failed + r.tally.skipped > 0 => {
                tracing::info!("{}", weather_line(&r))
            }
            Ok(r) => tracing::debug!("{}", weather_line(&r)),
            Err(e) => tracing::warn!("weather pass failed: {e}"),
        }
        std::thread::sleep(Duration::from_secs(args.weather_interval_secs.max(1)));
    }
}

/// How long the weather thread waits for the store while a sensor pass holds it.
const WEATHER_STORE_WAIT: Duration = Duration::from_secs(600);

fn settings_of(cfg: &Resolved, args: &RunArgs) -> Settings {
    let mut s = Settings::new(cfg.streams.clone());
    s.copy_threads = args.copy_threads.max(1);
    s.gap_minutes = args.gap_minutes.max(1);
    s.min_age = chrono::Duration::seconds(i64::from(args.min_age_secs));
    s.batch_size = args.batch_size.max(1);
    s
}

/// The plain loop: the store is opened per pass and closed in between, so `status` and `log`
/// can run while this waits.
fn run_forever(
    cfg: &Resolved,
    args: &RunArgs,
    source: &DirSource,
    bronze: &Bronze,
    settings: &Settings,
) -> Result<ExitCode> {
    let clock = SystemClock;
    loop {
        let outcome = (|| {
            let store = Store::open(&cfg.state, cfg.store_wait)?;
            let last = store.meta()?.get(META_LAST_RECONCILE).copied();
            let due = reconcile_due(last, clock.now_utc(), args.nightly_hour);
            let ctx = Context {
                store: &store,
                source,
                bronze,
                clock: &clock,
                settings,
            };
            run_pass(&ctx, due.then_some(PassMode::Reconcile))
        })();
        match outcome {
            Ok(r) if r.tally.copied + r.tally.failed + r.tally.skipped > 0 || r.listed > 0 => {
                tracing::info!("{}", human(&r))
            }
            Ok(r) => tracing::debug!("{}", human(&r)),
            Err(e) => tracing::warn!("pass failed: {e}"),
        }
        std::thread::sleep(Duration::from_secs(args.interval_secs.max(1)));
    }
}

/// One JSON object on stdout (the sensor report's fields, plus `weather` when configured),
/// or one human line per flow.
fn print_reports(sensors: Option<&PassReport>, weather: Option<&WeatherReport>, json: bool) {
    if json {
        let mut doc = match sensors {
            Some(r) => serde_json::to_value(r).expect("report serializes"),
            None => serde_json::json!({}),
        };
        if let Some(w) = weather {
            doc["weather"] = serde_json::to_value(w).expect("report serializes");
        }
        if sensors.is_some() || weather.is_some() {
            println!("{doc}");
        }
        return;
    }
    if let Some(r) = sensors {
        println!("{}", human(r));
    }
    if let Some(w) = weather {
        println!("{}", weather_line(w));
    }
}

fn weather_line(r: &WeatherReport) -> String {
    let t = &r.tally;
    format!(
        "weather: listed {}, unchanged {}, copied {}, adopted {}, skipped {}, failed {}, deferred {} ({} bytes) in {} ms",
        r.listed, r.unchanged, t.copied, t.adopted, t.skipped, t.failed, t.deferred, t.bytes, r.millis
    )
}

fn human(r: &PassReport) -> String {
    let t = &r.tally;
    format!(
        "{}: copied {}, adopted {}, skipped {}, failed {}, deferred {} ({} bytes; {} lookups, {} listings, {} listed) in {} ms",
        r.mode, t.copied, t.adopted, t.skipped, t.failed, t.deferred, t.bytes, r.work.lookups, r.work.listings, r.listed, r.millis
    )
}
