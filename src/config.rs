//! Configuration that is not per-command: which streams exist and how a pass behaves. The CLI
//! layer merges flags, environment and the optional config file into these values.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The seed's two apartments and their Bronze folder names.
pub const DEFAULT_STREAMS: &str = "JimmyLoup=jimmy,JeremieVianin=jeremie";

/// Configured sensor streams: apartment name (as in file names) → Bronze alias folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamMap(BTreeMap<String, String>);

impl StreamMap {
    /// Parses `NAME=ALIAS` entries. Aliases become folder names, so they are restricted to
    /// lower-case ASCII letters, digits, `-` and `_`, and `weather` is reserved.
    pub fn parse(specs: &[String]) -> Result<Self> {
        let mut map = BTreeMap::new();
        for spec in specs.iter().flat_map(|s| s.split(',')).map(str::trim) {
            if spec.is_empty() {
                continue;
            }
            let (name, alias) = spec
                .split_once('=')
                .ok_or_else(|| Error::Config(format!("stream `{spec}` is not NAME=ALIAS")))?;
            check_stream_name(name)?;
            check_alias(alias)?;
            if map.insert(name.to_owned(), alias.to_owned()).is_some() {
                return Err(Error::Config(format!(
                    "stream `{name}` is configured twice"
                )));
            }
        }
        if map.is_empty() {
            return Err(Error::Config("no streams configured".into()));
        }
        let mut aliases: Vec<_> = map.values().collect();
        aliases.sort();
        if aliases.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Config("two streams share one alias".into()));
        }
        Ok(StreamMap(map))
    }

    pub fn alias(&self, apartment: &str) -> Option<&str> {
        self.0.get(apartment).map(String::as_str)
    }

    /// (apartment, alias) pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn check_stream_name(name: &str) -> Result<()> {
    if !name.is_empty() && name.len() <= 64 && name.bytes().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "stream name `{name}` must be ASCII letters and digits"
        )))
    }
}

fn check_alias(alias: &str) -> Result<()> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias != "weather"
        // Bronze's own folder (`bronze::layout::RESERVED`, a layer above this one).
        && alias != "_ingest"
        && !alias.starts_with('.')
        && alias
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "alias `{alias}` must be lower-case letters, digits, - or _ (and not `weather` or \
             `_ingest`)"
        )))
    }
}

/// The whole-file check a file passes before it is copied: a writer that paused leaves a
/// file that is not yet a whole document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// One whole JSON document.
    Json,
    /// Ends with a line break (a CSV writer finishes its last row).
    Csv,
    None,
}

impl Check {
    pub fn parse(text: &str) -> Option<Check> {
        match text {
            "json" => Some(Check::Json),
            "csv" => Some(Check::Csv),
            "none" => Some(Check::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Check::Json => "json",
            Check::Csv => "csv",
            Check::None => "none",
        }
    }
}

/// How passes behave.
#[derive(Debug, Clone)]
pub struct Settings {
    pub streams: StreamMap,
    /// Consecutive missing minutes after which prediction stops walking a stream.
    pub gap_minutes: u32,
    /// Files copied in parallel.
    pub copy_threads: usize,
    /// A source file modified more recently than this may still be being written.
    pub min_age: chrono::Duration,
    /// A sensor file that is not complete JSON is deferred while its mtime is younger than
    /// this, then recorded as failed (and still retried by later passes).
    pub incomplete_grace: chrono::Duration,
    /// Files made durable with one flush and recorded in one transaction.
    pub batch_size: usize,
    /// How far past the wall clock prediction may probe (sensor clocks run a little ahead).
    pub future_skew_minutes: i64,
    /// Most lookups a pass spends walking one stream's gap once files resumed after it.
    pub bridge_budget: i64,
    /// Most lookups that find nothing a pass spends per stream on the missing minutes of the
    /// last day behind the stream's newest one (the hole sweep; files found cost no budget).
    pub sweep_budget: usize,
    /// How far past the wall clock a name may be dated and still be copied. A name further
    /// ahead (a gateway with a wrong clock, a hand-made test file) is recorded as skipped
    /// `in-future` and retried once the wall clock reaches it, so it never moves a baseline
    /// past now + this. One day: more than any time zone or DST confusion of a sensor clock.
    pub future_tolerance: chrono::Duration,
    /// Accept a reconcile listing smaller than half the last completed reconcile's (files
    /// removed from the share on purpose). Without it such a listing is an outage.
    pub accept_shrunk_share: bool,
    /// The whole-file check of a declared feed's files (`listing`); the seed's sensor files
    /// are always checked as JSON and its forecasts not at all.
    pub check: Check,
}

impl Settings {
    pub fn new(streams: StreamMap) -> Self {
        Settings {
            streams,
            gap_minutes: 10,
            copy_threads: 16,
            min_age: chrono::Duration::seconds(2),
            incomplete_grace: chrono::Duration::seconds(600),
            batch_size: 1000,
            future_skew_minutes: 1,
            bridge_budget: 1440,
            sweep_budget: 4,
            future_tolerance: chrono::Duration::days(1),
            accept_shrunk_share: false,
            check: Check::Json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_streams_parse_and_bad_aliases_are_refused() {
        let s = StreamMap::parse(&[DEFAULT_STREAMS.into()]).unwrap();
        assert_eq!(s.alias("JimmyLoup"), Some("jimmy"));
        assert_eq!(s.alias("JeremieVianin"), Some("jeremie"));
        for (bad, cause) in [
            ("A=../x", "alias `../x` must be lower-case"),
            ("A=weather", "alias `weather` must be lower-case"),
            ("A=", "alias `` must be lower-case"),
            ("A", "stream `A` is not NAME=ALIAS"),
            (
                "A/b=x",
                "stream name `A/b` must be ASCII letters and digits",
            ),
            ("A=x,B=x", "two streams share one alias"),
            ("A=Up", "alias `Up` must be lower-case"),
            ("A=x,A=y", "stream `A` is configured twice"),
            (" , ", "no streams configured"),
        ] {
            match StreamMap::parse(&[bad.into()]) {
                Err(Error::Config(msg)) => assert!(msg.contains(cause), "{bad}: {msg}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
