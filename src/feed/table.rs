//! A `[[feed]]` table of the config file, read into a [`Feed`]. Every refusal is a
//! configuration error (exit 2) that names the feed and the field, and says what to write
//! instead; a value that may be a secret is never repeated.

use super::{Cadence, Check, Feed, FeedSource, Pattern, Streams};
use crate::config::StreamMap;
use crate::error::{Error, Result};
use crate::source::smb::is_smb_url;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// One `[[feed]]` table as written.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FeedTable {
    pub name: Option<String>,
    pub source: Option<String>,
    pub pattern: Option<String>,
    pub cadence: Option<String>,
    /// `{stream}` value → Bronze alias.
    pub streams: Option<BTreeMap<String, String>>,
    /// The one alias of a feed without `{stream}`.
    pub alias: Option<String>,
    pub layout: Option<String>,
    pub check: Option<String>,
    pub timezone: Option<String>,
    pub silence_minutes: Option<u32>,
    /// The source's password, in a file (`smb://`, `sftp://`).
    pub password_file: Option<PathBuf>,
    /// An sFTP login key.
    pub key_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_sha256: Option<String>,
}

/// A feed as declared, with the credentials that reach its source.
#[derive(Debug, Clone)]
pub struct Declared {
    pub feed: Feed,
    pub password_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_sha256: Option<String>,
}

/// Reads every table; names and Bronze aliases must be unique across feeds (two feeds
/// writing one folder would mix their files).
pub fn read_all(tables: &[FeedTable]) -> Result<Vec<Declared>> {
    let mut declared: Vec<Declared> = Vec::new();
    let mut aliases: BTreeMap<String, String> = BTreeMap::new();
    for (i, table) in tables.iter().enumerate() {
        let one = table.read(i + 1)?;
        let name = &one.feed.name;
        if declared.iter().any(|d| &d.feed.name == name) {
            return Err(refused(name, "name", "is declared twice"));
        }
        for (_, alias) in one.feed.streams.pairs() {
            if let Some(other) = aliases.insert(alias.clone(), name.clone()) {
                return Err(refused(
                    name,
                    "streams",
                    &format!("alias `{alias}` is already feed `{other}`'s Bronze folder"),
                ));
            }
        }
        declared.push(one);
    }
    Ok(declared)
}

fn refused(feed: &str, field: &str, why: &str) -> Error {
    Error::Config(format!("feed `{feed}`, `{field}`: {why}"))
}

impl FeedTable {
    /// This table (the `nth` in the file, for a feed without a name) as a feed.
    pub fn read(&self, nth: usize) -> Result<Declared> {
        let name = self.name.clone().ok_or_else(|| {
            Error::Config(format!(
                "feed number {nth}: `name` is missing (lower-case letters, digits, - and _)"
            ))
        })?;
        check_name(&name).map_err(|why| refused(&format!("#{nth}"), "name", &why))?;
        let bad = |field: &str, why: &str| refused(&name, field, why);
        let required = |field: &str, value: &Option<String>| {
            value.clone().ok_or_else(|| bad(field, "is missing"))
        };
        let source =
            source_of(&required("source", &self.source)?).map_err(|w| bad("source", &w))?;
        let cadence =
            Cadence::parse(&required("cadence", &self.cadence)?).map_err(|w| bad("cadence", &w))?;
        let pattern = Pattern::parse(&required("pattern", &self.pattern)?, cadence)
            .map_err(|e| bad("pattern", &e.to_string()))?;
        let streams = self.streams_of(&pattern).map_err(|(f, w)| bad(f, &w))?;
        let layout = match &self.layout {
            Some(l) => check_layout(l, &pattern).map_err(|w| bad("layout", &w))?,
            None => Feed::default_layout(cadence).to_owned(),
        };
        let check = match &self.check {
            Some(c) => Check::parse(c).ok_or_else(|| bad("check", "must be json, csv or none"))?,
            None => Check::None,
        };
        let zone = match &self.timezone {
            Some(z) if z == "local" => None,
            Some(z) => Some(z.parse().map_err(|_| {
                bad(
                    "timezone",
                    &format!("`{z}` is not an IANA zone name (e.g. Europe/Zurich) nor `local`"),
                )
            })?),
            None => None,
        };
        if self.silence_minutes == Some(0) {
            return Err(bad("silence_minutes", "must be at least 1"));
        }
        self.check_credentials(&source)
            .map_err(|(f, w)| bad(f, &w))?;
        Ok(Declared {
            feed: Feed {
                name: name.clone(),
                source,
                pattern,
                streams,
                layout,
                check,
                zone,
                silence_minutes: self.silence_minutes,
            },
            password_file: self.password_file.clone(),
            key_file: self.key_file.clone(),
            known_hosts: self.known_hosts.clone(),
            host_key_sha256: self.host_key_sha256.clone(),
        })
    }

    /// `streams` for a pattern with `{stream}`, `alias` for one without; never both.
    fn streams_of(
        &self,
        pattern: &Pattern,
    ) -> std::result::Result<Streams, (&'static str, String)> {
        match (pattern.has_stream(), &self.streams, &self.alias) {
            (true, Some(map), None) => {
                // Joined as NAME=ALIAS specs: a `,` or `=` inside would split into others.
                if let Some((s, a)) = (map.iter()).find(|(s, a)| (*s).contains([',', '=']) || (*a).contains([',', '='])) {
                    return Err(("streams", format!("`{s} = {a:?}`: no `,` or `=` in a stream or alias")));
                }
                let specs: Vec<String> = map.iter().map(|(s, a)| format!("{s}={a}")).collect();
                StreamMap::parse(&specs)
                    .map(Streams::Named)
                    .map_err(|e| ("streams", e.to_string().replace("configuration: ", "")))
            }
            (true, _, _) => Err((
                "streams",
                "the pattern has {stream}: give `streams = { NAME = \"alias\", … }` (and no `alias`)"
                    .into(),
            )),
            (false, None, Some(alias)) => check_alias(alias)
                .map(|()| Streams::Single(alias.clone()))
                .map_err(|w| ("alias", w)),
            (false, _, _) => Err((
                "alias",
                "the pattern has no {stream}: give `alias = \"folder\"` (and no `streams`)".into(),
            )),
        }
    }

    /// Credentials only where the source can use them: a key file on a share would look as
    /// if it applied.
    fn check_credentials(
        &self,
        source: &FeedSource,
    ) -> std::result::Result<(), (&'static str, String)> {
        let sftp_only = [
            ("key_file", self.key_file.is_some()),
            ("known_hosts", self.known_hosts.is_some()),
            ("host_key_sha256", self.host_key_sha256.is_some()),
        ];
        let is_sftp = matches!(source, FeedSource::Sftp { .. });
        if let Some((field, _)) = sftp_only.iter().find(|(_, set)| *set && !is_sftp) {
            return Err((field, "applies to an sftp:// source only".into()));
        }
        if let Some(pin) = &self.host_key_sha256 {
            crate::source::sftp::normalize_pin(pin)
                .map_err(|e| ("host_key_sha256", e.to_string()))?;
        }
        if self.password_file.is_some() && matches!(source, FeedSource::Folder(_)) {
            return Err((
                "password_file",
                "applies to an smb:// or sftp:// source only (a folder is read as this user)"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && (name.bytes())
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_".contains(&c))
        && !name.starts_with(['-', '_']);
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 lower-case letters, digits, - or _ (it labels metrics)".into())
    }
}

/// A Bronze folder name: what `StreamMap` accepts for an alias, except that `weather` is
/// fine here (the weather feed's own).
fn check_alias(alias: &str) -> std::result::Result<(), String> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && !alias.starts_with(['.', '_'])
        && (alias.bytes())
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{alias}` must be lower-case letters, digits, - or _, not starting with . or _"
        ))
    }
}

/// A source as written: `sftp://USER@HOST[:PORT]/PATH`, `smb://…` (checked when its client
/// starts, as `--smb-path` is), or a folder. No password is accepted in a URL.
fn source_of(text: &str) -> std::result::Result<FeedSource, String> {
    if is_smb_url(text) {
        // Checked as the client will read it (a password in the URL is refused, without
        // repeating the URL), so a bad one is refused here by feed and field.
        crate::source::smb::SmbSettings::parse(text)?;
        return Ok(FeedSource::Smb(text.to_owned()));
    }
    let Some(rest) = text.strip_prefix("sftp://") else {
        if text.contains("://") {
            return Err(
                "must be a folder, smb://HOST/SHARE[/DIR] or sftp://USER@HOST[:PORT]/PATH".into(),
            );
        }
        return Ok(FeedSource::Folder(PathBuf::from(text)));
    };
    let Some((authority, path)) = rest.split_once('/') else {
        return Err("name the folder: sftp://USER@HOST[:PORT]/PATH (`/` alone is the root)".into());
    };
    let Some((user, host_port)) = authority.rsplit_once('@') else {
        return Err("an sftp:// source names its login: sftp://USER@HOST[:PORT]/PATH".into());
    };
    if user.contains(':') {
        return Err(
            "a password never goes in the URL: use `password_file` or SFTP_PASSWORD".into(),
        );
    }
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>().map_err(|_| {
                "the port after the host must be a number from 1 to 65535".to_owned()
            })?,
        ),
        None => (host_port, 22),
    };
    if user.is_empty() || host.is_empty() || port == 0 {
        return Err("must be sftp://USER@HOST[:PORT]/PATH".into());
    }
    Ok(FeedSource::Sftp {
        user: user.into(),
        host: host.into(),
        port,
        path: format!("/{path}"),
    })
}

/// A Bronze layout: `/`-separated folders, the first exactly `{alias}`, then time fields the
/// pattern has (`{YYYY}`, `{MM}`, `{DD}`, `{HH}`, `{mi}`) and plain text; nothing that could
/// climb out of Bronze or hide a folder.
fn check_layout(layout: &str, pattern: &Pattern) -> std::result::Result<String, String> {
    let mut folders = layout.split('/');
    if folders.next() != Some("{alias}") {
        return Err("must start with the folder {alias} (each stream's own)".into());
    }
    let mut seen = BTreeSet::new();
    for folder in folders {
        let plain = folder.replace(['{', '}'], "");
        if folder.is_empty() || folder.starts_with('.') || folder.contains('\\') {
            return Err(format!("folder `{folder}` is empty, hidden or holds a \\"));
        }
        if !(plain.bytes()).all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c)) {
            return Err(format!(
                "folder `{folder}`: letters, digits, - _ = and time fields only"
            ));
        }
        for field in placeholders(folder)? {
            if !pattern.text().contains(&field) {
                return Err(format!(
                    "{field} is not in the pattern, so no name gives its value"
                ));
            }
            if !seen.insert(field.clone()) {
                return Err(format!("{field} is used twice"));
            }
        }
    }
    Ok(layout.to_owned())
}

/// The `{…}` placeholders of one layout folder, each a time field.
fn placeholders(folder: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = folder;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("folder `{folder}` has an unclosed {{"))?;
        let field = &rest[open..open + close + 1];
        if !["{YYYY}", "{MM}", "{DD}", "{HH}", "{mi}"].contains(&field) {
            return Err(format!(
                "{field} is not a time field ({{YYYY}} {{MM}} {{DD}} {{HH}} {{mi}})"
            ));
        }
        out.push(field.to_owned());
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("folder `{folder}` has an unopened }}"));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
