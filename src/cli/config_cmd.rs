//! `ingest config check` (the configuration is valid, and every feed's source and Bronze can
//! be reached with it) and `ingest config show` (the effective settings and where each came
//! from). `check` is the first thing to run after editing the file: one line per check, exit
//! 0 when all pass, 1 when something could not be reached, 2 when the configuration itself
//! is refused (that error alone, as for every command).

use super::run::RunArgs;
use super::Resolved;
use crate::bronze::{Bronze, StageOutcome};
use crate::error::Result;
use crate::feed::{seed, Feed, FeedSource};
use crate::source::secret::SecretSource;
use crate::source::sftp::{Auth, HostKeyCheck};
use crate::source::{EntryKind, Source, SourceMeta};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: ConfigAction,
    /// `ingest run`'s options as the environment sets them (flags are `run`'s own), filled
    /// by [`Cli::from_argv`](super::Cli::from_argv) so `show` can say what a run would use.
    #[arg(skip)]
    pub run: Option<RunArgs>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Validate the configuration and reach every feed's source and Bronze with it (exit 0
    /// all reached, 1 something could not be, 2 the configuration is refused).
    Check,
    /// The effective settings as TOML, each with where it came from (flag, env, file,
    /// default); secrets are never shown.
    Show,
    /// Write the annotated example configuration to FILE, unless FILE exists (then it is left
    /// exactly as it is, and said so): the first step of a new setup, and what the Windows
    /// installer runs so an upgrade never overwrites an edited file.
    Init {
        /// Where to write it.
        #[arg(default_value = "ingest.toml")]
        file: PathBuf,
    },
}

/// `examples/ingest.toml`, annotated; its relative paths are taken from the working folder (a
/// service's `--work-dir`).
const EXAMPLE: &str = include_str!("../../examples/ingest.toml");

/// `ingest config init FILE`: writes [`EXAMPLE`] to `file` unless something is there already;
/// created exclusively, so a file appearing meanwhile is not overwritten either. On Windows
/// with CRLF line ends, for Notepad.
pub fn init(file: &Path) -> Result<ExitCode> {
    let text = if cfg!(windows) {
        EXAMPLE.replace('\n', "\r\n")
    } else {
        EXAMPLE.to_owned()
    };
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file);
    match created {
        Ok(mut f) => {
            use std::io::Write;
            if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
                // Not left half written: a next run would take it for the user's file.
                drop(f);
                let _ = std::fs::remove_file(file);
                return Err(crate::Error::io(
                    format!("cannot write {}", file.display()),
                    e,
                ));
            }
            println!(
                "wrote {}: edit it, then `ingest --config {0} config check`",
                file.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            println!("{} exists: left as it is", file.display());
        }
        Err(e) => {
            return Err(crate::Error::io(
                format!("cannot create {}", file.display()),
                e,
            ))
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(cfg: &Resolved, args: &ConfigArgs) -> Result<ExitCode> {
    match (&args.action, &args.run) {
        (ConfigAction::Check, Some(run)) => {
            // The [run] table and the options `run` checks only when it starts are refused
            // here too (exit 2): a check that passes must mean `run` starts.
            super::run::check_options(cfg, &cfg.run_args(run)?)?;
            Ok(check(cfg))
        }
        (ConfigAction::Show, Some(run)) => {
            print!("{}", show(cfg, &cfg.run_args(run)?));
            Ok(ExitCode::SUCCESS)
        }
        (ConfigAction::Init { file }, _) => init(file),
        (_, None) => Err(crate::Error::Internal(
            "config without run's options (not parsed by Cli::from_argv)".into(),
        )),
    }
}

/// The feeds this configuration declares: the seed's two where configured, then the file's
/// others.
pub fn feeds(cfg: &Resolved) -> Vec<Feed> {
    let sensors = cfg.smb_path.as_ref().map(|p| {
        let source = match &cfg.smb {
            Some(_) => FeedSource::Smb(p.display().to_string()),
            None => FeedSource::Folder(p.clone()),
        };
        seed::sensors(source, cfg.streams.clone())
    });
    let weather = cfg.weather.as_ref().map(|w| {
        seed::weather(FeedSource::Sftp {
            user: w.user.clone(),
            host: w.host.clone(),
            port: w.port,
            path: w.path.clone(),
        })
    });
    (sensors.into_iter().chain(weather))
        .chain(cfg.listed_feeds.iter().map(|d| d.feed.clone()))
        .collect()
}

/// One line per check on stdout; the exit code is 1 when any failed.
fn check(cfg: &Resolved) -> ExitCode {
    let mut failed = 0;
    let mut line = |ok: bool, what: String| {
        failed += usize::from(!ok);
        println!("{}  {what}", if ok { "ok  " } else { "FAIL" });
    };
    let file = (cfg.config.as_ref()).map_or("no config file".into(), |f| {
        format!("config file {}", f.display())
    });
    let feeds = feeds(cfg);
    line(true, format!("{file}: valid, {} feed(s)", feeds.len()));
    if feeds.is_empty() {
        let none = "no feed: set a share (--smb-path, SMB_PATH or smb_path) or a weather server \
                    (--sftp-host, SFTP_HOST or sftp_host), or declare a [[feed]] in the config file";
        line(false, none.into());
    }
    for feed in &feeds {
        line(true, sample_line(feed));
        let (ok, what) = reach_line(cfg, feed);
        line(ok, what);
    }
    match bronze_check(cfg) {
        Ok(what) => line(true, what),
        Err(why) => line(false, why),
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What a name of the feed looks like, formatted from its pattern and read back: a pattern
/// typo shows in the example before any file is missed.
fn sample_line(feed: &Feed) -> String {
    let time = NaiveDate::from_ymd_opt(2023, 8, 18)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .expect("a valid time");
    // On the feed's grid (a daily feed's slot is midnight): `format`'s contract.
    let slot = feed.cadence().slot_of(time);
    let pairs = feed.streams.pairs();
    let stream = (feed.pattern.has_stream()).then(|| pairs[0].0.as_str());
    let name = feed.pattern.format(stream, slot);
    let back = feed.pattern.parse_name(&name).ok();
    debug_assert_eq!(back.map(|p| p.slot), Some(slot));
    format!(
        "feed `{}`: every {}, names like `{name}`, into {}",
        feed.name,
        feed.cadence(),
        feed.layout.replace("{alias}", &pairs[0].1)
    )
}

/// Whether the feed's source was reached, and the line saying so.
fn reach_line(cfg: &Resolved, feed: &Feed) -> (bool, String) {
    let (name, at) = (&feed.name, feed.source.describe());
    let listed = cfg.listed_feeds.iter().any(|d| &d.feed.name == name);
    let note = if listed {
        " (run by prediction and a nightly listing: README, \"Feeds\")"
    } else {
        ""
    };
    match reach(cfg, feed) {
        Some(Ok(())) => (true, format!("feed `{name}`: source {at} reached{note}")),
        Some(Err(why)) => (false, format!("feed `{name}`: source {at}: {why}{note}")),
        None => (
            true,
            format!(
                "feed `{name}`: declared, not run by this release (README, \"Feeds\"); its \
                 source {at} is not reached"
            ),
        ),
    }
}

/// Reaches the feed's source with the configured client and login: the seed's flows' for a
/// feed of their shape, the feed's own for any other (`None`: nothing configured reaches it).
fn reach(cfg: &Resolved, feed: &Feed) -> Option<std::result::Result<(), String>> {
    let unrun = cfg.listed_feeds.iter().find(|d| d.feed.name == feed.name);
    let source: Box<crate::source::Counted<dyn Source + Send>> = match seed::shape_of(feed) {
        _ if unrun.is_some() => match unrun.map(|d| cfg.feed_source(d))? {
            Ok(source) => source,
            Err(why) => return Some(Err(why)),
        },
        Some(seed::SeedShape::Sensors) => match cfg.share() {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => return Some(Err(e.to_string())),
        },
        Some(seed::SeedShape::Weather) => {
            let settings = cfg.weather.clone()?;
            match crate::source::sftp::source(settings) {
                Ok(s) => s,
                Err(e) => return Some(Err(e.to_string())),
            }
        }
        None => return None,
    };
    Some(source.check().map_err(|e| match feed.source {
        FeedSource::Folder(_) => format!("{e} (is the share mounted? is `source` right?)"),
        _ => e.to_string(),
    }))
}

/// Bronze reached and writable: a probe staged at its root and discarded (never published).
fn bronze_check(cfg: &Resolved) -> std::result::Result<String, String> {
    let bronze = cfg.bronze().map_err(|e| e.to_string())?;
    let at = bronze.describe();
    if cfg.object.is_none() && !cfg.bronze_root.exists() {
        // Nothing is created by a check: the first copy makes the folder (as `run` does).
        let root = &cfg.bronze_root;
        let there = root
            .ancestors()
            .skip(1)
            .find(|a| a.as_os_str().is_empty() || a.is_dir());
        return match there {
            Some(_) => Ok(format!(
                "Bronze {at}: not there yet; the first copy creates it"
            )),
            None => Err(format!(
                "Bronze {at}: neither it nor a folder above it exists"
            )),
        };
    }
    probe_bronze(cfg, &*bronze, &at)?;
    Ok(format!(
        "Bronze {at}: reached and writable (a probe staged and removed)"
    ))
}

/// Reads Bronze and stages a probe at its root, discarded (never published); in a bucket,
/// where staging only spools locally, a write is also started there and aborted. An error is
/// the FAIL line.
fn probe_bronze(cfg: &Resolved, bronze: &dyn Bronze, at: &str) -> std::result::Result<(), String> {
    // The client's words name the address but not what to check.
    let hint = |what: &str| match (&cfg.object, what) {
        (None, _) => "",
        (Some(_), "reading") => {
            " (is the store up at that address? are the endpoint and credentials right?)"
        }
        (Some(_), _) => " (may these credentials write to the bucket?)",
    };
    let fail =
        |what: &str, e: crate::seam::SeamError| format!("Bronze {at}: {what}: {e}{}", hint(what));
    bronze.is_empty().map_err(|e| fail("reading", e))?;
    let probe = b"ingest config check\n";
    let meta = SourceMeta {
        kind: EntryKind::File,
        size: probe.len() as u64,
        mtime_ns: 0,
    };
    let mut reader = &probe[..];
    let mut same = || Ok(Some(meta));
    let outcome = bronze
        .stage(&mut reader, meta, &mut same, "ingest-config-check")
        .map_err(|e| fail("writing a probe", e))?;
    if let StageOutcome::Staged(staged) = outcome {
        bronze
            .discard(staged)
            .map_err(|e| fail("removing the probe", e))?;
    }
    if let Some(bucket) = &cfg.object {
        // Staging spooled the probe locally: the bucket itself is asked whether it takes one.
        let object = (bucket.open(cfg.s3_credentials.as_deref(), cfg.s3_timeout))
            .map_err(|why| format!("Bronze {at}: {why}"))?;
        object
            .probe_write("ingest-config-check")
            .map_err(|e| fail("writing a probe", e))?;
    }
    Ok(())
}

/// The effective settings as TOML, each line with its origin in a comment.
fn show(cfg: &Resolved, run: &RunArgs) -> String {
    let mut out = String::new();
    let mut put = |key: &str, value: String, origin: &str| {
        out.push_str(&setting_line(key, &value, origin));
    };
    let origin = |id: &str| cfg.origin_of(id).name();
    let path = |p: &std::path::Path| format!("{:?}", p.display().to_string());
    if let Some(p) = &cfg.smb_path {
        put("smb_path", path(p), origin("smb_path"));
    }
    put("bronze_root", path(&cfg.bronze_root), origin("bronze_root"));
    put("state", path(&cfg.state), origin("state"));
    let streams: Vec<String> = cfg
        .streams
        .iter()
        .map(|(s, a)| format!("{s}={a}"))
        .collect();
    put("streams", format!("{streams:?}"), origin("streams"));
    for (key, d) in [
        ("s3_timeout_secs", cfg.s3_timeout),
        ("store_wait_secs", cfg.store_wait),
    ] {
        put(key, format!("{}", d.as_secs_f64()), origin(key));
    }
    if let Some(smb) = &cfg.smb {
        let timeout = smb.timeout.as_secs_f64().to_string();
        put("smb_timeout_secs", timeout, origin("smb_timeout_secs"));
        if let Some(SecretSource::File(p)) = &smb.password {
            put("smb_password_file", path(p), origin("smb_password_file"));
        }
    }
    if let Some(p) = &cfg.s3_credentials {
        put(
            "s3_credentials_file",
            path(p),
            origin("s3_credentials_file"),
        );
    }
    if let Some(w) = &cfg.weather {
        put("sftp_host", format!("{:?}", w.host), origin("sftp_host"));
        put("sftp_port", w.port.to_string(), origin("sftp_port"));
        put("sftp_user", format!("{:?}", w.user), origin("sftp_user"));
        put("sftp_path", format!("{:?}", w.path), origin("sftp_path"));
        match &w.auth {
            Auth::Key { file, .. } => put("sftp_key_file", path(file), origin("sftp_key_file")),
            Auth::Password(SecretSource::File(p)) => {
                put("sftp_password_file", path(p), origin("sftp_password_file"))
            }
            Auth::Password(SecretSource::Value(_)) => {}
        }
        match &w.host_key {
            HostKeyCheck::Pinned(pin) => put(
                "sftp_host_key_sha256",
                format!("{pin:?}"),
                origin("sftp_host_key_sha256"),
            ),
            HostKeyCheck::KnownHosts { file, .. } => {
                put("sftp_known_hosts", path(file), origin("sftp_known_hosts"))
            }
        }
        let timeout = w.timeout.as_secs_f64().to_string();
        put("sftp_timeout_secs", timeout, origin("sftp_timeout_secs"));
    }
    for var in [
        "SMB_PASSWORD",
        "SFTP_PASSWORD",
        "SFTP_KEY_PASSPHRASE",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            out.push_str(&format!("# {var} is set in the environment (not shown)\n"));
        }
    }
    out.push_str("\n[run]\n");
    for (key, value) in run.shown() {
        let origin = cfg.origin_of(key).name();
        out.push_str(&match value {
            Some(value) => setting_line(key, &value, origin),
            None => setting_line(&format!("# {key}"), "(not set)", origin),
        });
    }
    for feed in feeds(cfg) {
        out.push_str(&format!(
            "\n# feed `{}`: {} every {}, pattern {:?}, layout {:?}, check {}, zone {}\n",
            feed.name,
            feed.source.describe(),
            feed.cadence(),
            feed.pattern.text(),
            feed.layout,
            feed.check.name(),
            feed.zone
                .map_or("the machine's".into(), |z| z.name().to_owned()),
        ));
    }
    out
}

/// `key = value`, its origin in a comment aligned after it.
fn setting_line(key: &str, value: &str, origin: &str) -> String {
    format!("{:<54} # {origin}\n", format!("{key} = {value}"))
}
