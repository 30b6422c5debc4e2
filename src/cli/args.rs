//! What clap parses: the global options every subcommand understands, before or after its
//! name, and the subcommands themselves. The doc comments here are the `--help` text. Clap
//! puts a flag over its environment variable; the config file and the defaults come after, in
//! `resolve`.

use super::{
    adopt, audit, config_cmd, demo, gaps, log, manual, replay, report_html, restore, run, service,
    status,
};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// `ingest --version`: the release, the commit it was built from and that commit's date
/// (`build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("INGEST_COMMIT"),
    ", ",
    env!("INGEST_COMMIT_DATE"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "ingest",
    version = VERSION,
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
    /// The share with the sensor JSON files: a mounted folder, or
    /// smb://[USER@]HOST[:PORT]/SHARE[/DIR] to read it natively without mounting it (password
    /// from SMB_PASSWORD or --smb-password-file, domain from SMB_DOMAIN).
    #[arg(long, env = "SMB_PATH", global = true)]
    pub smb_path: Option<PathBuf>,
    /// File holding the password of an smb:// share (the password itself: env SMB_PASSWORD only).
    #[arg(long, env = "SMB_PASSWORD_FILE", global = true)]
    pub smb_password_file: Option<PathBuf>,
    /// Limit for connecting to an smb:// share and for each request to it, in seconds. A
    /// share that stalls ends the pass as an outage within about twice this.
    #[arg(long, env = "SMB_TIMEOUT_SECS", default_value_t = 30.0, global = true)]
    pub smb_timeout_secs: f64,
    /// Bronze: a local folder, or s3://BUCKET[/PREFIX] for an S3-compatible object store
    /// (credentials and endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
    /// AWS_ENDPOINT_URL, AWS_ALLOW_HTTP) [default: storage/bronze].
    #[arg(long, env = "BRONZE_ROOT", global = true)]
    pub bronze_root: Option<PathBuf>,
    /// An AWS-CLI-style credentials file for an s3:// Bronze (`[default]` with
    /// aws_access_key_id, aws_secret_access_key; optionally region, endpoint_url); its values
    /// win over the AWS_* variables. For a service, which has none of your environment.
    #[arg(long, env = "S3_CREDENTIALS_FILE", global = true)]
    pub s3_credentials_file: Option<PathBuf>,
    /// Seconds one request to an s3:// Bronze may take (a large object's whole download
    /// included). A store that stalls ends the pass as an outage within about twice this.
    #[arg(long, env = "S3_TIMEOUT_SECS", default_value_t = 120.0, global = true)]
    pub s3_timeout_secs: f64,
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
    /// Optional TOML file with the same settings, under flags and environment: smb_path,
    /// smb_password_file, smb_timeout_secs, bronze_root, s3_credentials_file, s3_timeout_secs,
    /// state, store_wait_secs, streams, sftp_host, sftp_port, sftp_user, sftp_password_file,
    /// sftp_key_file, sftp_path, sftp_known_hosts, sftp_host_key_sha256, sftp_timeout_secs; and
    /// in a [run] table: copy_threads, gap_minutes, min_age_secs, incomplete_secs, batch_size,
    /// interval_secs, max_backoff_secs, on_new, hook_timeout_secs, weather_interval_secs,
    /// sftp_retries, sftp_retry_secs, nightly_hour, metrics_addr, silence_minutes; and any
    /// number of [[feed]] tables: name, source, pattern, cadence, streams or alias, layout,
    /// check, timezone, silence_minutes, password_file, key_file, known_hosts,
    /// host_key_sha256. No secrets inline: *_file keys or the environment.
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
    /// Append the log to this file instead of stderr (a Windows service has no console).
    #[arg(long, env = "INGEST_LOG_FILE", global = true)]
    pub log_file: Option<PathBuf>,
    #[command(flatten)]
    pub sftp: SftpArgs,
    /// Where each option's value came from; filled by [`Cli::from_argv`].
    #[arg(skip)]
    pub origins: Origins,
}

/// Where a setting's value came from, for layering and for `ingest config show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File,
    Default,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Flag => "flag",
            Origin::Env => "env",
            Origin::File => "file",
            Origin::Default => "default",
        }
    }
}

/// The origin of every option clap saw, by its id (the flag's name with `_`). An option not
/// in the map counts as given: a file value never overrides what a caller may have set, even
/// for a `Cli` parsed without [`Cli::from_argv`].
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Whether `id` holds clap's default, so a config file value may replace it.
    pub fn defaulted(&self, id: &str) -> bool {
        self.0.get(id) == Some(&Origin::Default)
    }

    pub fn get(&self, id: &str) -> Option<Origin> {
        self.0.get(id).copied()
    }

    /// Records every argument `command` takes: one absent from `matches` (no default, not
    /// given) counts as defaulted too, so the file may set it.
    fn record(&mut self, command: &clap::Command, matches: &ArgMatches) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let origin = match matches
                .try_get_raw(id)
                .ok()
                .and_then(|_| matches.value_source(id))
            {
                Some(ValueSource::CommandLine) => Origin::Flag,
                Some(ValueSource::EnvVariable) => Origin::Env,
                _ => Origin::Default,
            };
            self.0.insert(id.to_owned(), origin);
        }
    }
}

impl Cli {
    /// Parses `argv` and records where each value came from (flag, environment or clap's
    /// default), which the config file's layering needs: clap alone cannot tell a default
    /// from a value given. The only way the binary and the service parse a command line.
    pub fn from_argv<I, T>(argv: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = Cli::command();
        let matches = command.clone().try_get_matches_from(argv)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let mut origins = Origins::default();
        origins.record(&command, &matches);
        if let Some((name, sub)) = matches.subcommand() {
            if let Some(sub_command) = command.find_subcommand(name) {
                origins.record(sub_command, sub);
            }
        }
        if let Command::Config(config) = &mut cli.command {
            // What `run` would take from the environment, for `config show`.
            let run = command.find_subcommand("run").expect("the run subcommand");
            let matches = run.clone().try_get_matches_from(["run"])?;
            origins.record(run, &matches);
            config.run = Some(super::run::RunArgs::from_arg_matches(&matches)?);
        }
        cli.global.origins = origins;
        Ok(cli)
    }
}

/// The weather sFTP server. The weather flow runs only when a host is set. Secrets are read
/// from the environment or a file, never from the command line, where any user of the
/// machine could read them in the process list.
#[derive(Args, Debug, Clone, Default)]
pub struct SftpArgs {
    /// Weather sFTP server; the weather flow runs only when this is set.
    #[arg(long, env = "SFTP_HOST", global = true)]
    pub sftp_host: Option<String>,
    /// sFTP port [default: 22].
    #[arg(long, env = "SFTP_PORT", global = true)]
    pub sftp_port: Option<u16>,
    /// sFTP login name.
    #[arg(long, env = "SFTP_USER", global = true)]
    pub sftp_user: Option<String>,
    /// File holding the sFTP password (the password itself: env SFTP_PASSWORD only).
    #[arg(long, env = "SFTP_PASSWORD_FILE", global = true)]
    pub sftp_password_file: Option<PathBuf>,
    /// Private key for the sFTP login; wins over a password (passphrase: env SFTP_KEY_PASSPHRASE).
    #[arg(long, env = "SFTP_KEY_FILE", global = true)]
    pub sftp_key_file: Option<PathBuf>,
    /// Remote folder with the Pred_YYYY-MM-DD.csv files [default: the login folder].
    #[arg(long, env = "SFTP_PATH", global = true)]
    pub sftp_path: Option<String>,
    /// OpenSSH known_hosts file the server's host key must be in [default: ~/.ssh/known_hosts].
    #[arg(long, env = "SFTP_KNOWN_HOSTS", global = true)]
    pub sftp_known_hosts: Option<PathBuf>,
    /// Trust exactly this host key instead, as `ssh-keygen -lf` shows it (SHA256:...).
    #[arg(long, env = "SFTP_HOST_KEY_SHA256", global = true)]
    pub sftp_host_key_sha256: Option<String>,
    /// Trust a server that has no known_hosts entry yet, and record its key there.
    #[arg(long, global = true)]
    pub accept_new_host_key: bool,
    /// Limit for connecting and for each sFTP operation, in seconds.
    #[arg(long, env = "SFTP_TIMEOUT_SECS", default_value_t = 30.0, global = true)]
    pub sftp_timeout_secs: f64,
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
    /// Which expected minutes never arrived, per stream (exit 1 if any is missing).
    Gaps(gaps::GapsArgs),
    /// The event log, oldest first.
    Log(log::LogArgs),
    /// The status page (freshness, completeness heatmap) as one static HTML file.
    Report(report_html::ReportArgs),
    /// Verify Bronze and the share against the recorded hashes.
    Audit(audit::AuditArgs),
    /// Recover a time window after an outage.
    Replay(replay::ReplayArgs),
    /// Record an existing Bronze tree in the index (hashing every file).
    Adopt(adopt::AdoptArgs),
    /// Rebuild the store on a new machine from the log shipped into Bronze.
    Restore(restore::RestoreArgs),
    /// Build a sample share, ingest it, and show the result.
    Demo(demo::DemoArgs),
    /// Check the configuration and reach every source and Bronze with it, or show it.
    Config(config_cmd::ConfigArgs),
    /// Run `ingest run` as a Windows service: install or uninstall it.
    Service(service::ServiceArgs),
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish).
    Completions(manual::CompletionsArgs),
    /// Print the manual page, or write one per subcommand into a folder (--dir).
    Man(manual::ManArgs),
}
