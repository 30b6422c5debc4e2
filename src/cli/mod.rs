//! The command line: global options (flags > environment > config file > defaults) and one
//! module per subcommand, each with its own `Args` and `run`. Subcommands return the exit
//! code; errors that mean "could not run" bubble up to `main` as exit 2.

mod adopt;
mod audit;
mod demo;
mod log;
mod replay;
mod run;
mod since;
mod status;

use crate::config::{StreamMap, DEFAULT_STREAMS};
use crate::error::{Error, Result};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "ingest",
    version,
    about = "Copy sensor files from a share into Bronze, with an event log"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands, before or after its name.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// The mounted share with the sensor JSON files.
    #[arg(long, env = "SMB_PATH", global = true)]
    pub smb_path: Option<PathBuf>,
    /// Local Bronze folder [default: storage/bronze].
    #[arg(long, env = "BRONZE_ROOT", global = true)]
    pub bronze_root: Option<PathBuf>,
    /// The redb store [default: ingest.redb beside the Bronze folder].
    #[arg(long, env = "INGEST_STATE", global = true)]
    pub state: Option<PathBuf>,
    /// A stream as APARTMENT=ALIAS; repeatable [default: JimmyLoup=jimmy,JeremieVianin=jeremie].
    #[arg(
        long = "stream",
        env = "INGEST_STREAMS",
        value_delimiter = ',',
        global = true
    )]
    pub streams: Vec<String>,
    /// Optional TOML file with the same settings (smb_path, bronze_root, state, streams).
    #[arg(long, env = "INGEST_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Seconds to wait for a store that another ingest process holds before giving up.
    #[arg(
        long,
        env = "INGEST_STORE_WAIT_SECS",
        default_value_t = 5.0,
        global = true
    )]
    pub store_wait_secs: f64,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest: one pass (--once), a full reconcile (--scan), or keep running.
    Run(run::RunArgs),
    /// Streams, baselines and event counts.
    Status(status::StatusArgs),
    /// The event log, oldest first.
    Log(log::LogArgs),
    /// Verify Bronze and the share against the recorded hashes.
    Audit(audit::AuditArgs),
    /// Recover a time window after an outage.
    Replay(replay::ReplayArgs),
    /// Record an existing Bronze tree in the index (hashing every file).
    Adopt(adopt::AdoptArgs),
    /// Build a sample share, ingest it, and show the result.
    Demo(demo::DemoArgs),
}

/// The config file: the global options, nothing else.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    smb_path: Option<PathBuf>,
    bronze_root: Option<PathBuf>,
    state: Option<PathBuf>,
    streams: Option<Vec<String>>,
}

/// Global options after merging flags, environment, file and defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub smb_path: Option<PathBuf>,
    pub bronze_root: PathBuf,
    pub state: PathBuf,
    pub streams: StreamMap,
    /// How long to wait for a busy store.
    pub store_wait: Duration,
}

impl GlobalArgs {
    pub fn resolve(&self) -> Result<Resolved> {
        let file = match &self.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let bronze_root = self
            .bronze_root
            .clone()
            .or(file.bronze_root)
            .unwrap_or_else(|| PathBuf::from("storage/bronze"));
        let state = self
            .state
            .clone()
            .or(file.state)
            .unwrap_or_else(|| default_state(&bronze_root));
        let streams = match (&self.streams, file.streams) {
            (s, _) if !s.is_empty() => s.clone(),
            (_, Some(s)) => s,
            _ => vec![DEFAULT_STREAMS.to_owned()],
        };
        Ok(Resolved {
            smb_path: self.smb_path.clone().or(file.smb_path),
            bronze_root,
            state,
            streams: StreamMap::parse(&streams)?,
            store_wait: Duration::try_from_secs_f64(self.store_wait_secs)
                .map_err(|_| Error::Config("--store-wait-secs must be a positive number".into()))?,
        })
    }
}

/// `ingest.redb` in the parent folder of the Bronze root (local disk, never the share).
fn default_state(bronze_root: &Path) -> PathBuf {
    match bronze_root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("ingest.redb"),
        _ => PathBuf::from("ingest.redb"),
    }
}

fn read_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| Error::Config(format!("config file {}: {}", path.display(), e.message())))
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(&cli.global.resolve()?, &args),
        Command::Status(args) => status::run(&cli.global.resolve()?, &args),
        Command::Log(args) => log::run(&cli.global.resolve()?, &args),
        Command::Audit(args) => audit::run(&cli.global.resolve()?, &args),
        Command::Replay(args) => replay::run(&cli.global.resolve()?, &args),
        Command::Adopt(args) => adopt::run(&cli.global.resolve()?, &args),
        Command::Demo(args) => demo::run(&cli.global, &args),
    }
}
