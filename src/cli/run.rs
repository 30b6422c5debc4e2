//! `ingest run`: one pass (`--once`), a reconcile now (`--scan`), or a simple loop that runs a
//! prediction pass every interval and a reconcile once a night.

use super::Resolved;
use crate::bronze::Bronze;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::daemon::{Daemon, DaemonConfig};
use crate::error::{Error, Result};
use crate::hook::Hook;
use crate::pass::Discovery;
use crate::pass::{run_pass, Context, PassReport};
use crate::source::DirSource;
use crate::store::Store;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
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
    #[arg(long, env = "INTERVAL_SECS", default_value_t = 60.0)]
    pub interval_secs: f64,
    /// Longest wait between retries while the share or the store fails.
    #[arg(long, env = "INGEST_MAX_BACKOFF_SECS", default_value_t = 300.0)]
    pub max_backoff_secs: f64,
    /// Command run after a pass that ingested files; it gets the new Bronze paths in a
    /// manifest file named by $INGEST_MANIFEST (one per line) and their count in
    /// $INGEST_NEW_COUNT.
    #[arg(long, env = "INGEST_ON_NEW")]
    pub on_new: Option<String>,
    /// Seconds the hook may run before it is killed (its files are offered again).
    #[arg(
        long = "hook-timeout",
        env = "INGEST_HOOK_TIMEOUT_SECS",
        default_value_t = 300.0
    )]
    pub hook_timeout_secs: f64,
    /// Local hour of the nightly reconcile.
    #[arg(long, env = "NIGHTLY_HOUR", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..24))]
    pub nightly_hour: u32,
}

pub fn run(cfg: &Resolved, args: &RunArgs) -> Result<ExitCode> {
    let share = cfg
        .smb_path
        .clone()
        .ok_or_else(|| Error::Config("no share configured (--smb-path or SMB_PATH)".into()))?;
    let source = DirSource::new(share);
    let bronze = Bronze::new(&cfg.bronze_root);
    let settings = settings_of(cfg, args);
    if args.once || args.scan {
        let mode = args.scan.then_some(Discovery::Reconcile);
        let store = Store::open(&cfg.state, cfg.store_wait)?;
        let ctx = Context::new(&store, &source, &bronze, &SystemClock, &settings);
        let report = run_pass(&ctx, mode)?;
        print_report(&report, args.json);
        return Ok(exit_code(&report));
    }
    run_forever(cfg, args, source, bronze, settings)
}

fn settings_of(cfg: &Resolved, args: &RunArgs) -> Settings {
    let mut s = Settings::new(cfg.streams.clone());
    s.copy_threads = args.copy_threads.max(1);
    s.gap_minutes = args.gap_minutes.max(1);
    s.min_age = chrono::Duration::seconds(i64::from(args.min_age_secs));
    s.batch_size = args.batch_size.max(1);
    s
}

/// The daemon: refuses to start if another daemon holds the lock file, stops cleanly on
/// SIGINT/SIGTERM (exit 0).
fn run_forever(
    cfg: &Resolved,
    args: &RunArgs,
    source: DirSource,
    bronze: Bronze,
    settings: Settings,
) -> Result<ExitCode> {
    let _lock = DaemonLock::acquire(&cfg.state)?;
    let hook = args.on_new.clone().map(|command| Hook {
        command,
        timeout: Duration::from_secs_f64(args.hook_timeout_secs.max(0.1)),
        work_dir: cfg
            .state
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| ".".into(), Into::into),
    });
    let config = DaemonConfig {
        interval: Duration::from_secs_f64(args.interval_secs.max(0.05)),
        nightly_hour: args.nightly_hour,
        max_backoff: Duration::from_secs_f64(args.max_backoff_secs.max(args.interval_secs)),
        hook,
        inline: false,
    };
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(SystemClock);
    let daemon = Arc::new(Daemon::new(
        cfg.state.clone(),
        cfg.store_wait,
        Arc::new(source),
        bronze,
        clock,
        settings,
        config,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    tracing::info!(state = %cfg.state.display(), interval_s = args.interval_secs, "daemon started");
    runtime.block_on(daemon.run(shutdown_signal()));
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM (Ctrl-C only, where there is no SIGTERM).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// "Only one daemon per store": an OS file lock held for the daemon's lifetime, separate from
/// redb's lock (which the daemon releases between passes).
struct DaemonLock {
    _file: std::fs::File,
}

impl DaemonLock {
    fn acquire(state: &std::path::Path) -> Result<Self> {
        let mut name = state.as_os_str().to_owned();
        name.push(".daemon.lock");
        let path = std::path::PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::DaemonRunning { lock: path }),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

fn print_report(report: &PassReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
    } else {
        println!("{}", human(report));
    }
}

fn human(r: &PassReport) -> String {
    let t = &r.tally;
    format!(
        "{}: copied {}, adopted {}, skipped {}, failed {}, deferred {} ({} bytes; {} lookups, {} listings, {} listed) in {} ms",
        r.mode, t.copied, t.adopted, t.skipped, t.failed, t.deferred, t.bytes, r.work.lookups, r.work.listings, r.listed, r.millis
    )
}

fn exit_code(r: &PassReport) -> ExitCode {
    if r.tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
