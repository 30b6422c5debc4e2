//! The config file (`--config`, TOML): the global options at the top level, `ingest run`'s in a
//! `[run]` table, so one file holds every setting a service needs (a Windows service has no
//! user environment). Secrets are never inline: a key that would hold one is refused by name,
//! without its value, before anything else is read.

use super::run::RunArgs;
use super::Origins;
use crate::error::{Error, Result};
use crate::feed::seed::{shape_of, SeedShape};
use crate::feed::table::{self, Declared, FeedTable};
use crate::feed::{FeedSource, Streams};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config file's global options.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub smb_path: Option<PathBuf>,
    pub smb_password_file: Option<PathBuf>,
    pub smb_timeout_secs: Option<f64>,
    pub bronze_root: Option<PathBuf>,
    pub s3_credentials_file: Option<PathBuf>,
    pub s3_timeout_secs: Option<f64>,
    pub state: Option<PathBuf>,
    pub store_wait_secs: Option<f64>,
    pub streams: Option<Vec<String>>,
    pub sftp_host: Option<String>,
    pub sftp_port: Option<u16>,
    pub sftp_user: Option<String>,
    pub sftp_password_file: Option<PathBuf>,
    pub sftp_key_file: Option<PathBuf>,
    pub sftp_path: Option<String>,
    pub sftp_known_hosts: Option<PathBuf>,
    pub sftp_host_key_sha256: Option<String>,
    pub sftp_timeout_secs: Option<f64>,
    /// `ingest run`'s options.
    pub run: Option<RunFile>,
    /// `[[feed]]` tables.
    pub feed: Option<Vec<FeedTable>>,
    /// The keys the file set (`[run]`'s as `run.KEY`), and those its seed-shaped feeds set:
    /// where `config show` says "file".
    #[serde(skip)]
    pub keys: BTreeSet<String>,
}

/// The top-level keys a sensors-shaped feed configures.
const SENSOR_KEYS: [&str; 3] = ["smb_path", "streams", "smb_password_file"];
/// The top-level keys a weather-shaped feed configures.
const WEATHER_KEYS: [&str; 8] = [
    "sftp_host",
    "sftp_port",
    "sftp_user",
    "sftp_path",
    "sftp_password_file",
    "sftp_key_file",
    "sftp_known_hosts",
    "sftp_host_key_sha256",
];

impl FileConfig {
    /// Reads the `[[feed]]` tables. A feed of one of the seed's shapes (README, "Feeds") is
    /// written into the keys its flow reads (`smb_path`, `streams`, `sftp_*`), so flags and
    /// environment still win over it; the feeds of other shapes are returned, to be run by
    /// listing (`listing`).
    pub fn desugar_feeds(&mut self, file: &Path) -> Result<Vec<Declared>> {
        let declared = table::read_all(self.feed.as_deref().unwrap_or_default())?;
        let mut others = Vec::new();
        for one in declared {
            match shape_of(&one.feed) {
                Some(SeedShape::Sensors) => self.take_sensors(&one, file)?,
                Some(SeedShape::Weather) => self.take_weather(&one, file)?,
                None => others.push(one),
            }
        }
        Ok(others)
    }

    fn take_sensors(&mut self, one: &Declared, file: &Path) -> Result<()> {
        self.take_keys(&one.feed.name, &SENSOR_KEYS, file)?;
        self.smb_path = Some(match &one.feed.source {
            FeedSource::Folder(p) => p.clone(),
            other => PathBuf::from(other.describe()),
        });
        if let Streams::Named(map) = &one.feed.streams {
            self.streams = Some(map.iter().map(|(s, a)| format!("{s}={a}")).collect());
        }
        self.smb_password_file = one.password_file.clone();
        if let Some(minutes) = one.feed.silence_minutes {
            // The sensors' silence is the daemon's `silence_minutes`: one value, said once.
            let run = self.run.get_or_insert_with(RunFile::default);
            if run.silence_minutes.is_some_and(|m| m != minutes) {
                return Err(Error::Config(format!(
                    "config file {}: feed `{}` sets silence_minutes and [run] another; keep one",
                    file.display(),
                    one.feed.name
                )));
            }
            run.silence_minutes = Some(minutes);
            self.keys.insert("run.silence_minutes".into());
        }
        Ok(())
    }

    fn take_weather(&mut self, one: &Declared, file: &Path) -> Result<()> {
        self.take_keys(&one.feed.name, &WEATHER_KEYS, file)?;
        if one.feed.silence_minutes.is_some() {
            // Refused, not ignored: a threshold accepted and never watched looks as if it were.
            return Err(Error::Config(format!(
                "config file {}: feed `{}`, `silence_minutes`: this release watches the silence \
                 of the sensors only; remove it",
                file.display(),
                one.feed.name
            )));
        }
        if let FeedSource::Sftp {
            user,
            host,
            port,
            path,
        } = &one.feed.source
        {
            self.sftp_host = Some(host.clone());
            self.sftp_port = Some(*port);
            self.sftp_user = Some(user.clone());
            self.sftp_path = Some(path.clone());
        }
        self.sftp_password_file = one.password_file.clone();
        self.sftp_key_file = one.key_file.clone();
        self.sftp_known_hosts = one.known_hosts.clone();
        self.sftp_host_key_sha256 = one.host_key_sha256.clone();
        Ok(())
    }

    /// Claims `keys` for a seed-shaped feed: refused when the file already set one of them,
    /// as a key or through another feed of the same shape (which would win is a guess, and
    /// the loser would be silently ignored); then they count as the file's (`config show`).
    fn take_keys(&mut self, feed: &str, keys: &[&str], file: &Path) -> Result<()> {
        if let Some(key) = keys.iter().find(|k| self.keys.contains(**k)) {
            return Err(Error::Config(format!(
                "config file {}: feed `{feed}` and `{key}` (or another feed of its shape) both \
                 configure the same flow; keep the feed's own keys",
                file.display()
            )));
        }
        self.keys.extend(keys.iter().map(|k| k.to_string()));
        Ok(())
    }
}

/// The `[run]` table: `ingest run`'s options, each named as its flag with `_`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RunFile {
    pub copy_threads: Option<usize>,
    pub gap_minutes: Option<u32>,
    pub min_age_secs: Option<u32>,
    pub incomplete_secs: Option<u32>,
    pub batch_size: Option<usize>,
    pub interval_secs: Option<f64>,
    pub max_backoff_secs: Option<f64>,
    pub on_new: Option<String>,
    pub hook_timeout_secs: Option<f64>,
    pub weather_interval_secs: Option<u64>,
    pub sftp_retries: Option<u32>,
    pub sftp_retry_secs: Option<u64>,
    pub nightly_hour: Option<u32>,
    pub metrics_addr: Option<SocketAddr>,
    pub silence_minutes: Option<u32>,
}

/// Copies each `[run]` value the file sets into `args` where the option was left at clap's
/// default: flags and environment win over the file. `file` names the config file, for
/// messages. Ranges clap checks on flags are checked here too.
macro_rules! layer {
    ($args:ident, $run:ident, $origins:ident, $($field:ident),* $(,)?) => {
        $(
            if let Some(value) = $run.$field.clone() {
                if $origins.defaulted(stringify!($field)) {
                    $args.$field = value.into();
                }
            }
        )*
    };
}

impl RunFile {
    pub fn layer_onto(&self, args: &mut RunArgs, origins: &Origins, file: &Path) -> Result<()> {
        let out_of_range = |key: &str, range: &str| {
            Error::Config(format!(
                "{key} in the config file {} must be {range}",
                file.display()
            ))
        };
        if self.nightly_hour.is_some_and(|h| h > 23) {
            return Err(out_of_range("nightly_hour", "an hour from 0 to 23"));
        }
        if self
            .silence_minutes
            .is_some_and(|m| !(1..=525_600).contains(&m))
        {
            return Err(out_of_range("silence_minutes", "1 to 525600 minutes"));
        }
        let run = self;
        layer!(
            args,
            run,
            origins,
            copy_threads,
            gap_minutes,
            min_age_secs,
            incomplete_secs,
            batch_size,
            interval_secs,
            max_backoff_secs,
            on_new,
            hook_timeout_secs,
            weather_interval_secs,
            sftp_retries,
            sftp_retry_secs,
            nightly_hour,
            metrics_addr,
            silence_minutes,
        );
        Ok(())
    }
}

/// Keys that would hold a secret inline. The file takes only a `*_file` key (or the
/// environment) for each: a config file is copied, mailed and checked in.
const INLINE_SECRETS: [(&str, &str); 6] = [
    ("smb_password", "smb_password_file or SMB_PASSWORD"),
    ("sftp_password", "sftp_password_file or SFTP_PASSWORD"),
    ("sftp_key_passphrase", "SFTP_KEY_PASSPHRASE"),
    ("password", "a *_password_file key or the environment"),
    (
        "aws_secret_access_key",
        "s3_credentials_file or AWS_SECRET_ACCESS_KEY",
    ),
    (
        "aws_access_key_id",
        "s3_credentials_file or AWS_ACCESS_KEY_ID",
    ),
];

pub(super) fn read_config(path: &Path) -> Result<FileConfig> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    let at = |why: String| Error::Config(format!("config file {}: {why}", path.display()));
    let text = decode(&bytes).map_err(at)?;
    // Read as plain TOML first, so an inline secret is refused by its key before the typed
    // parse. Errors name the line and its key, never quote it: it may hold a misspelt secret.
    let table: toml::Table = toml::from_str(&text).map_err(|e| at(located(&text, &e)))?;
    refuse_inline_secrets(&table, "").map_err(at)?;
    let mut config: FileConfig = toml::from_str(&text).map_err(|e| at(located(&text, &e)))?;
    for (key, value) in &table {
        config.keys.insert(key.clone());
        if let (true, Some(run)) = (key == "run", value.as_table()) {
            config.keys.extend(run.keys().map(|k| format!("run.{k}")));
        }
    }
    Ok(config)
}

/// The file's text: UTF-8, with or without the byte-order mark Windows editors write, or
/// UTF-16 with its mark (what PowerShell 5's `>` and `Out-File` write).
fn decode(bytes: &[u8]) -> std::result::Result<String, String> {
    let utf16 = |units: Vec<u16>| {
        String::from_utf16(&units).map_err(|_| "not valid UTF-16 text".to_owned())
    };
    let pairs = |rest: &[u8], le: bool| -> Vec<u16> {
        (rest.chunks(2))
            .map(|p| {
                let (a, b) = (p[0], *p.get(1).unwrap_or(&0));
                if le {
                    u16::from_le_bytes([a, b])
                } else {
                    u16::from_be_bytes([a, b])
                }
            })
            .collect()
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest).map(str::to_owned),
        [0xFF, 0xFE, rest @ ..] => return utf16(pairs(rest, true)),
        [0xFE, 0xFF, rest @ ..] => return utf16(pairs(rest, false)),
        _ => std::str::from_utf8(bytes).map(str::to_owned),
    }
    .map_err(|e| format!("not UTF-8 text (save it as UTF-8): {e}"))
}

/// A TOML error with the line it is on and that line's key, for a file of many keys.
fn located(text: &str, e: &toml::de::Error) -> String {
    let mut message = redacted(e.message());
    if message.contains("escape") {
        // A Windows path in double quotes: TOML reads its backslashes as escapes.
        message.push_str(" (write a Windows path in single quotes, 'Z:\\data', or with /)");
    }
    let Some(span) = e.span() else {
        return message;
    };
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text[start..].lines().next().unwrap_or("");
    match line.split_once('=').map(|(k, _)| k.trim()) {
        Some(key) if !key.is_empty() && !key.starts_with('[') => {
            format!("line {line_no}, `{key}`: {message}")
        }
        _ => format!("line {line_no}: {message}"),
    }
}

/// `message` with every double-quoted part (serde quotes the value it refused) replaced by
/// `"…"`: a refused value may be a secret under a misspelt key.
fn redacted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, part) in message.split('"').enumerate() {
        out.push_str(if i % 2 == 1 { "…" } else { part });
        out.push('"');
    }
    out.pop();
    out
}

/// Refuses any key of `table` (or of a table inside it) that would hold a secret, naming the
/// key and what to use instead, never the value.
fn refuse_inline_secrets(table: &toml::Table, prefix: &str) -> std::result::Result<(), String> {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        if let Some((_, instead)) = INLINE_SECRETS.iter().find(|(k, _)| *k == key) {
            return Err(format!(
                "`{path}` would hold a secret inline; the file takes none (use {instead})"
            ));
        }
        let nested = match value {
            toml::Value::Table(t) => vec![t],
            toml::Value::Array(items) => items.iter().filter_map(|v| v.as_table()).collect(),
            _ => Vec::new(),
        };
        for t in nested {
            refuse_inline_secrets(t, &format!("{path}."))?;
        }
    }
    Ok(())
}
