//! From parsed options to the settings a command runs with: the TOML config file, the layering
//! (flags > environment > config file > defaults), secrets (from the environment or a file,
//! never a flag), the checks that refuse a bad value as a configuration error (exit 2) before
//! anything runs, and the factories that pick the share's `Source` and the `Bronze`.

use super::args::{GlobalArgs, Origins, SftpArgs};
use super::config_file::{read_config, FileConfig, RunFile};
use super::run::RunArgs;
use crate::bronze::s3::{is_s3_url, S3Location};
use crate::config::{StreamMap, DEFAULT_STREAMS};
use crate::error::{Error, Result};
use crate::source::sftp::{
    default_known_hosts, normalize_pin, Auth, HostKeyCheck, Secret, SecretSource, SftpError,
    SftpSettings,
};
use crate::source::smb::{self, is_smb_url, SmbSettings};
use crate::source::{Counted, DirSource, Source};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Global options after merging flags, environment, file and defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub smb_path: Option<PathBuf>,
    /// The share read natively, when `smb_path` is an smb:// URL.
    pub smb: Option<SmbSettings>,
    pub bronze_root: PathBuf,
    /// The bucket, when `bronze_root` is an s3:// URL.
    pub object: Option<S3Location>,
    /// Its credentials file, if one is given.
    pub s3_credentials: Option<PathBuf>,
    /// How long one request to it may take.
    pub s3_timeout: Duration,
    /// The limits for one request to a native share and to an sFTP server.
    pub smb_timeout: Duration,
    pub sftp_timeout: Duration,
    pub state: PathBuf,
    pub streams: StreamMap,
    /// How long to wait for a busy store.
    pub store_wait: Duration,
    /// The weather server, when one is configured.
    pub weather: Option<SftpSettings>,
    /// The config file, if one is given, and its `[run]` table.
    pub config: Option<PathBuf>,
    /// The file's feeds of shapes other than the seed's two: `run --once` and the daemon run
    /// them by listing their sources (`listing`).
    pub listed_feeds: Vec<crate::feed::table::Declared>,
    pub(super) run_file: RunFile,
    pub(super) origins: Origins,
    /// The keys the config file set (see `FileConfig::keys`).
    pub(super) file_keys: std::collections::BTreeSet<String>,
}

impl Resolved {
    /// Where option `id`'s value came from: a flag or the environment, else the config file
    /// when it set the key (`[run]`'s included), else the default.
    pub fn origin_of(&self, id: &str) -> super::Origin {
        use super::Origin;
        match self.origins.get(id) {
            Some(o @ (Origin::Flag | Origin::Env)) => o,
            _ if self.file_keys.contains(id) || self.file_keys.contains(&format!("run.{id}")) => {
                Origin::File
            }
            _ => Origin::Default,
        }
    }

    /// `ingest run`'s options with the config file's `[run]` table under them: a value the
    /// file sets replaces only a default, never a flag or an environment variable.
    pub fn run_args(&self, args: &RunArgs) -> Result<RunArgs> {
        let mut args = args.clone();
        if let Some(file) = &self.config {
            self.run_file.layer_onto(&mut args, &self.origins, file)?;
        }
        Ok(args)
    }

    /// The Bronze layer the configuration names: the one place a run picks its implementation.
    pub fn bronze(&self) -> Result<std::sync::Arc<dyn crate::bronze::Bronze>> {
        Ok(match &self.object {
            Some(bucket) => std::sync::Arc::new(
                bucket
                    .open(self.s3_credentials.as_deref(), self.s3_timeout)
                    .map_err(|why| Error::Config(format!("--bronze-root (BRONZE_ROOT): {why}")))?,
            ),
            None => std::sync::Arc::new(crate::bronze::LocalBronze::new(&self.bronze_root)),
        })
    }

    /// [`Resolved::feed_source`], reached (`Source::check`), for a command that reads a
    /// declared feed's files on it (`audit`, `replay --feed`); errors name the feed, and an
    /// unreachable source's says `hint` too (what else the user can do), when there is one.
    pub fn reached_feed_source(
        &self,
        declared: &crate::feed::table::Declared,
        hint: &str,
    ) -> Result<Box<Counted<dyn Source + Send>>> {
        let name = &declared.feed.name;
        let source =
            (self.feed_source(declared)).map_err(|e| Error::in_feed(name, Error::Config(e)))?;
        source.check().map_err(|e| {
            let why = match hint {
                "" => e.into(),
                hint => std::io::Error::new(e.io().kind(), format!("{e} ({hint})")),
            };
            Error::in_feed(name, Error::unreachable(source.describe(), why))
        })?;
        Ok(source)
    }

    /// The source of a feed this release declares but does not run, for `config check`: the
    /// feed's own login (`password_file`, `key_file`, or the environment as for the seed's
    /// flows) and host key, and the global timeouts.
    pub fn feed_source(
        &self,
        declared: &crate::feed::table::Declared,
    ) -> std::result::Result<Box<Counted<dyn Source + Send>>, String> {
        use crate::feed::FeedSource;
        let password = |var: &str| match &declared.password_file {
            Some(file) => Some(SecretSource::File(file.clone())),
            None => secret_from_env(var).map(SecretSource::Value),
        };
        match &declared.feed.source {
            FeedSource::Folder(path) => Ok(Box::new(Counted::new(DirSource::new(path)))),
            FeedSource::Smb(url) => {
                let mut smb = SmbSettings::parse(url)?;
                smb.password = password("SMB_PASSWORD");
                smb.domain = std::env::var("SMB_DOMAIN").unwrap_or_default();
                smb.timeout = self.smb_timeout;
                smb::source(smb).map_err(|e| e.to_string())
            }
            FeedSource::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let auth = match &declared.key_file {
                    Some(file) => Auth::Key {
                        file: file.clone(),
                        passphrase: secret_from_env("SFTP_KEY_PASSPHRASE"),
                    },
                    None => Auth::Password(password("SFTP_PASSWORD").ok_or(
                        "no login: set `key_file` or `password_file` in the feed, or SFTP_PASSWORD",
                    )?),
                };
                let host_key = match (&declared.host_key_sha256, &declared.known_hosts) {
                    (Some(pin), _) => {
                        HostKeyCheck::Pinned(normalize_pin(pin).map_err(|e| e.to_string())?)
                    }
                    (None, file) => HostKeyCheck::KnownHosts {
                        file: (file.clone())
                            .or_else(default_known_hosts)
                            .ok_or("no known_hosts: set `known_hosts` or `host_key_sha256`")?,
                        accept_new: false,
                    },
                };
                let settings = SftpSettings {
                    host: host.clone(),
                    port: *port,
                    user: user.clone(),
                    auth,
                    path: path.clone(),
                    host_key,
                    timeout: self.sftp_timeout,
                };
                crate::source::sftp::source(settings).map_err(|e| e.to_string())
            }
        }
    }

    /// The share the configuration names, if any: a mounted folder or, for an smb:// URL, the
    /// native client. The one place a run picks the share's implementation; counted, as every
    /// source a run reads ([`Counted`]).
    pub fn share(&self) -> Result<Option<Box<Counted<dyn Source + Send>>>> {
        let Some(path) = &self.smb_path else {
            return Ok(None);
        };
        Ok(Some(match &self.smb {
            Some(settings) => smb::source(settings.clone())
                .map_err(|e| Error::io("starting the SMB client", e))?,
            None => Box::new(Counted::new(DirSource::new(path))),
        }))
    }
}

impl GlobalArgs {
    pub fn resolve(&self) -> Result<Resolved> {
        let mut file = match &self.config {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let listed_feeds = match &self.config {
            Some(path) => file.desugar_feeds(path)?,
            None => Vec::new(),
        };
        // Timeouts are checked whatever is configured: one set and accepted looks as if it
        // applied.
        let smb_timeout = seconds(
            "--smb-timeout-secs (SMB_TIMEOUT_SECS)",
            self.layered(
                "smb_timeout_secs",
                self.smb_timeout_secs,
                file.smb_timeout_secs,
            ),
            1.0,
        )?;
        let sftp_timeout = seconds(
            "--sftp-timeout-secs (SFTP_TIMEOUT_SECS)",
            self.layered(
                "sftp_timeout_secs",
                self.sftp.sftp_timeout_secs,
                file.sftp_timeout_secs,
            ),
            1.0,
        )?;
        let weather = (self.sftp).resolve(&file, sftp_timeout, self.config.as_deref())?;
        let smb_path = self.smb_path.clone().or(file.smb_path.clone());
        let smb = self.smb_settings(smb_path.as_deref(), &file, smb_timeout)?;
        let bronze_root = self
            .bronze_root
            .clone()
            .or(file.bronze_root)
            .unwrap_or_else(|| PathBuf::from("storage/bronze"));
        let object = object_location(&bronze_root)?;
        let state = self
            .state
            .clone()
            .or(file.state)
            .unwrap_or_else(|| match &object {
                // On local disk, one store per bucket and prefix: never the local Bronze's,
                // whose log would claim files the bucket does not hold.
                Some(bucket) => bucket.default_state(),
                None => default_state(&bronze_root),
            });
        let streams = match (&self.streams, file.streams) {
            (s, _) if !s.is_empty() => s.clone(),
            (_, Some(s)) => s,
            _ => vec![DEFAULT_STREAMS.to_owned()],
        };
        let resolved = Resolved {
            smb_path,
            smb,
            bronze_root,
            object,
            s3_credentials: self
                .s3_credentials_file
                .clone()
                .or(file.s3_credentials_file),
            s3_timeout: seconds(
                "--s3-timeout-secs (S3_TIMEOUT_SECS)",
                self.layered(
                    "s3_timeout_secs",
                    self.s3_timeout_secs,
                    file.s3_timeout_secs,
                ),
                1.0,
            )?,
            state,
            streams: StreamMap::parse(&streams)?,
            store_wait: seconds(
                "--store-wait-secs (INGEST_STORE_WAIT_SECS)",
                self.layered(
                    "store_wait_secs",
                    self.store_wait_secs,
                    file.store_wait_secs,
                ),
                0.0,
            )?,
            weather,
            smb_timeout,
            sftp_timeout,
            config: self.config.clone(),
            listed_feeds,
            run_file: file.run.take().unwrap_or_default(),
            file_keys: std::mem::take(&mut file.keys),
            origins: self.origins.clone(),
        };
        check_feed_folders(&resolved)?;
        Ok(resolved)
    }

    /// The flag's (or environment's) `value` for option `id`, or the config file's when the
    /// option was left at its default.
    fn layered<T>(&self, id: &str, value: T, from_file: Option<T>) -> T {
        layered(&self.origins, id, value, from_file)
    }
}

/// `value`, or `from_file` when option `id` holds clap's default.
fn layered<T>(origins: &Origins, id: &str, value: T, from_file: Option<T>) -> T {
    match from_file {
        Some(v) if origins.defaulted(id) => v,
        _ => value,
    }
}

impl GlobalArgs {
    /// The native share's settings when `path` is an smb:// URL (a bad one is exit 2 naming
    /// --smb-path, without repeating the URL, which may hold a password by mistake). The
    /// timeout is checked whatever the share: one set and accepted looks as if it applied.
    fn smb_settings(
        &self,
        path: Option<&Path>,
        file: &FileConfig,
        timeout: Duration,
    ) -> Result<Option<SmbSettings>> {
        let Some(url) = path.and_then(Path::to_str).filter(|p| is_smb_url(p)) else {
            return Ok(None);
        };
        needs_feature(
            "smb-native",
            cfg!(feature = "smb-native"),
            "--smb-path (SMB_PATH) smb://…",
        )?;
        let mut smb = SmbSettings::parse(url)
            .map_err(|why| Error::Config(format!("--smb-path (SMB_PATH): {why}")))?;
        let file_pw = self
            .smb_password_file
            .clone()
            .or(file.smb_password_file.clone());
        smb.password = match file_pw {
            Some(pw) => Some(SecretSource::File(pw)),
            None => secret_from_env("SMB_PASSWORD").map(SecretSource::Value),
        };
        smb.domain = std::env::var("SMB_DOMAIN").unwrap_or_default();
        smb.timeout = timeout;
        Ok(Some(smb))
    }
}

impl SftpArgs {
    /// The weather server's settings, or `None` when no host is configured; `config` is the
    /// config file's path, for messages. The timeout is checked even without a host, as the
    /// other timeouts are.
    fn resolve(
        &self,
        file: &FileConfig,
        timeout: Duration,
        config: Option<&Path>,
    ) -> Result<Option<SftpSettings>> {
        let Some(host) = self.sftp_host.clone().or(file.sftp_host.clone()) else {
            return Ok(None);
        };
        let host_set_in = set_in("sftp-host", self.sftp_host.is_some(), config);
        needs_feature("sftp", cfg!(feature = "sftp"), &host_set_in)?;
        let missing = |what: String| Error::Config(format!("{host_set_in} is set but {what}"));
        let user = (self.sftp_user.clone().or(file.sftp_user.clone())).ok_or_else(|| {
            missing(format!(
                "no login name is: set {}",
                ways_to_set("sftp-user")
            ))
        })?;
        let auth = self.auth(file).ok_or_else(|| {
            missing(format!(
                "no login is: set a key file ({}), a password file ({}) or SFTP_PASSWORD",
                ways_to_set("sftp-key-file"),
                ways_to_set("sftp-password-file")
            ))
        })?;
        let host_key = self.host_key(file, config)?.ok_or_else(|| {
            missing(format!(
                "no known_hosts file is: set {}",
                ways_to_set("sftp-known-hosts")
            ))
        })?;
        Ok(Some(SftpSettings {
            host,
            port: self.sftp_port.or(file.sftp_port).unwrap_or(22),
            user,
            auth,
            path: (self.sftp_path.clone().or(file.sftp_path.clone())).unwrap_or_else(|| ".".into()),
            host_key,
            timeout,
        }))
    }

    /// A pinned key wins over a known_hosts file; `None` when neither is set and there is no
    /// home folder for the default known_hosts. A bad pin names where it was set.
    fn host_key(&self, file: &FileConfig, config: Option<&Path>) -> Result<Option<HostKeyCheck>> {
        let flag = self.sftp_host_key_sha256.as_ref();
        if let Some(pin) = flag.or(file.sftp_host_key_sha256.as_ref()) {
            return match normalize_pin(pin) {
                Ok(pin) => Ok(Some(HostKeyCheck::Pinned(pin))),
                Err(SftpError::Config(why)) => {
                    let setting = set_in("sftp-host-key-sha256", flag.is_some(), config);
                    Err(Error::Config(format!("{setting}: {why}")))
                }
                Err(other) => Err(other.into()),
            };
        }
        let known_hosts = (self.sftp_known_hosts.clone())
            .or(file.sftp_known_hosts.clone())
            .or_else(default_known_hosts);
        Ok(known_hosts.map(|file| HostKeyCheck::KnownHosts {
            file,
            accept_new: self.accept_new_host_key,
        }))
    }

    /// A key file wins over a password file, which wins over `SFTP_PASSWORD`.
    fn auth(&self, file: &FileConfig) -> Option<Auth> {
        if let Some(key) = self.sftp_key_file.clone().or(file.sftp_key_file.clone()) {
            let passphrase = secret_from_env("SFTP_KEY_PASSPHRASE");
            return Some(Auth::Key {
                file: key,
                passphrase,
            });
        }
        if let Some(pw) = self
            .sftp_password_file
            .clone()
            .or(file.sftp_password_file.clone())
        {
            return Some(Auth::Password(SecretSource::File(pw)));
        }
        secret_from_env("SFTP_PASSWORD").map(|pw| Auth::Password(SecretSource::Value(pw)))
    }
}

/// Where `flag`, a global option the config file also takes, was set, for messages: the flag
/// (clap does not tell it from its variable) when `by_flag`, else the config file's key.
fn set_in(flag: &str, by_flag: bool, config: Option<&Path>) -> String {
    let key = flag.replace('-', "_");
    match config {
        Some(file) if !by_flag => format!("{key} in the config file {}", file.display()),
        _ => format!("--{flag} ({})", key.to_uppercase()),
    }
}

/// Every way to set `flag`, a global option the config file also takes, for messages.
fn ways_to_set(flag: &str) -> String {
    let key = flag.replace('-', "_");
    format!(
        "--{flag}, {} or {key} in the config file",
        key.to_uppercase()
    )
}

/// The longest duration any option accepts: a year. Beyond it a value is a typo, and huge
/// ones (`1e20`, `inf`) do not fit a `Duration` or overflow `Instant + duration` later.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A number of seconds given for `option`, checked: finite, at least `min` and at most a year.
/// Refused values are a configuration error naming the option (exit 2), never a panic.
pub(crate) fn seconds(option: &str, value: f64, min: f64) -> Result<Duration> {
    if value.is_finite() && value >= min && value <= MAX_SECONDS {
        if let Ok(d) = Duration::try_from_secs_f64(value) {
            return Ok(d);
        }
    }
    Err(Error::Config(format!(
        "{option} must be a number of seconds from {min} to {MAX_SECONDS}, not {value}"
    )))
}

/// A secret from the environment only: flags would show it in the process list.
fn secret_from_env(var: &str) -> Option<Secret> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

/// The bucket an s3:// Bronze root names (a bad one is exit 2 naming --bronze-root).
fn object_location(root: &Path) -> Result<Option<S3Location>> {
    let Some(url) = root.to_str().filter(|r| is_s3_url(r)) else {
        return Ok(None);
    };
    needs_feature(
        "s3",
        cfg!(feature = "s3"),
        "--bronze-root (BRONZE_ROOT) s3://…",
    )?;
    S3Location::parse(url)
        .map(Some)
        .map_err(|why| Error::Config(format!("--bronze-root (BRONZE_ROOT): {why}")))
}

/// Refuses `setting` when this build was made without the Cargo `feature` it needs: exit 2
/// naming both (README, "Build features"), before anything runs. The setting's value is not
/// repeated: a URL may carry a password.
fn needs_feature(feature: &str, built_with: bool, setting: &str) -> Result<()> {
    if built_with {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{setting}: this ingest was built without the `{feature}` feature (rebuild with \
         `cargo build --features {feature}`, or leave the default features on)"
    )))
}

/// `ingest.redb` in the parent folder of the Bronze root (local disk, never the share).
fn default_state(bronze_root: &Path) -> PathBuf {
    match bronze_root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join("ingest.redb"),
        _ => PathBuf::from("ingest.redb"),
    }
}

/// Refuses a declared feed named as one of the seed's flows, or whose Bronze folder (an alias)
/// is one the seed's configured flows write: two flows in one folder would take each other's
/// files for their own.
fn check_feed_folders(cfg: &Resolved) -> Result<()> {
    for declared in &cfg.listed_feeds {
        let name = &declared.feed.name;
        if crate::store::feeds::SEED_FEEDS.contains(&name.as_str()) {
            // The name labels the seed's flow in metrics, heartbeats and the log.
            return Err(Error::Config(format!(
                "feed `{name}`: the name is the seed's {name} flow's, and this feed is not of \
                 its shape: give it a name of its own, or the seed's pattern, cadence, layout \
                 and check"
            )));
        }
        for (_, alias) in declared.feed.streams.pairs() {
            let sensors = cfg.smb_path.is_some() && cfg.streams.iter().any(|(_, a)| a == alias);
            let weather = cfg.weather.is_some() && alias == crate::feed::seed::WEATHER_ALIAS;
            if sensors || weather {
                let flow = if sensors { "sensors" } else { "weather" };
                return Err(Error::Config(format!(
                    "feed `{}`: its Bronze folder `{alias}` is also the {flow} flow's: give \
                     the feed another alias, so each flow keeps its own folder",
                    declared.feed.name
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod features_tests;

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
